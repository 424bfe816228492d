"""The prediction log the drift job reads: one parquet row per prediction, written in batches.

Layout: `<store>/<model>/date=YYYY-MM-DD/<time>-<unique>.parquet`, where `store` is a local folder
or `s3://bucket/prefix` (boto3; AWS_ENDPOINT_URL_S3 points it at another S3 API). The date is the
UTC date of each prediction, so a buffer that spans midnight writes one file per day.

Columns: `features.FEATURE_COLUMNS` (float64, the same `drift_features` the reference table holds),
then `prediction` (int64 class index, as in the reference's validation table), `predicted_class`
(its name), `confidence` (float64), `model_version` (string), `timestamp` (UTC, microseconds),
`request_id` (string) — together `LOG_COLUMNS` — then `image_index` (int64, the image's position
within its request: (`request_id`, `image_index`) names one image, the key ground truth is sent
for, `workloads.labels`), then the model's whole softmax vector:
`features.softmax_columns(n_classes)`, `softmax_0` .. `softmax_<n-1>` (float64; column i is model
output i, the class `class_names[i]`; each row sums to 1 up to float32 rounding), then `image_png`
(binary: the image the model saw as a PNG file, null above the size bound; `logged_images` says
why and how). `prediction` is the
argmax of those columns and `confidence` their maximum, taken from the same array the response's
`probabilities` come from. The schema metadata key `mlops` records the features version and the model.

Files written before the softmax columns existed hold `LOG_COLUMNS` only, and stay readable:
`read_prediction_log` gives their rows NaN softmax values when another file has the columns, and no
softmax columns at all when no file has them (readers skip what needs them: the drift job's BBSD).
Those files have no `image_index` either (NaN the same way): their images cannot be joined with
labels, which did not exist when they were written. Files from before `image_png` have no images:
the labelling queue skips their rows.

Rows are appended before the response is sent and written when `flush_rows` wait, when the buffered
images reach `flush_image_bytes`, or every `flush_seconds`; `close()` (called on SIGTERM) writes
whatever is left, so nothing acknowledged is lost on a graceful shutdown. A failed write keeps the
rows buffered and is retried on the next flush.

The buffer holds each request's images, not its features: `drift_features` runs when rows are
written, on the writer thread, for many requests in one call. Per request it costs about as much
as the whole forward pass of a small model (mostly fixed numpy and pandas overhead), so computing it
there took a large share of the service's CPU off the request path (benchmarks/serving.py). Values
are those of `drift_features` on the same image up to float32 rounding (its matrix products round
differently with the batch size, ~1e-7).
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from workloads import features
from workloads.serving.logged_images import DEFAULT_MAX_PIXELS, IMAGE_COLUMN, encode_png

logger = logging.getLogger("mlops.serving")

RECORD_COLUMNS = ("prediction", "predicted_class", "confidence", "model_version", "timestamp", "request_id")
LOG_COLUMNS = features.FEATURE_COLUMNS + RECORD_COLUMNS
"""The columns every log file has, old or new; `image_index` and the softmax columns follow them (`log_columns`)."""
IMAGE_INDEX_COLUMN = "image_index"
METADATA_KEY = b"mlops"
FEATURE_CHUNK_PIXELS = 1 << 22
"""Pixels per `drift_features` call when rows are written (16 MiB of float32): bounds the copy."""


def log_columns(n_classes: int) -> list[str]:
    """Every column of a file written for a model with `n_classes` outputs, in file order."""
    return [*LOG_COLUMNS, IMAGE_INDEX_COLUMN, *features.softmax_columns(n_classes), IMAGE_COLUMN]


class _Record(NamedTuple):
    """One request's rows as the request produced them: turned into a DataFrame once per flush."""

    images: np.ndarray
    probabilities: np.ndarray
    """(N, classes) float64: the model's softmax vector per image."""
    predictions: np.ndarray
    predicted_classes: list[str]
    confidences: np.ndarray
    model_versions: list[str]
    timestamp: pd.Timestamp
    request_id: str


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"invalid predictions store {uri!r}: expected s3://bucket[/prefix]")
    return bucket, prefix.strip("/")


class PredictionLog:
    """Buffered, batched writer of prediction rows for one model."""

    def __init__(
        self,
        store: str,
        model: str,
        flush_rows: int = 1000,
        flush_seconds: float = 10.0,
        flush_image_bytes: int = 32 * 1024 * 1024,
        image_max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.store = store
        self.model = model
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.flush_image_bytes = flush_image_bytes
        """Write early when the buffered images take this much memory (large images, high rates)."""
        self.image_max_pixels = image_max_pixels
        """Images larger than this are logged without their PNG (`logged_images`)."""
        self._records: list[_Record] = []
        self._rows = 0
        self._image_bytes = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"prediction-log-{model}", daemon=True)
        self._s3: Any = None
        if store.startswith("s3://"):
            _split_s3(store)
        self._thread.start()

    @property
    def pending_rows(self) -> int:
        return self._rows

    def append(
        self,
        images: np.ndarray,
        probabilities: np.ndarray,
        class_names: Sequence[str],
        model_versions: Sequence[str],
        request_id: str,
    ) -> None:
        """Buffer one request's rows (one per image; a version per row: a swap can split a request).

        `images` is the request's (N, H, W) batch as `features.drift_features` takes it (uint8, or
        floats in [0, 1]); it is kept, not copied, until written: the caller must not change it.
        `probabilities` is the model's (N, len(class_names)) softmax output for them; the logged
        prediction and confidence are its argmax and maximum.
        """
        # Keep plain arrays here (microseconds per request); features and the DataFrame come once per flush.
        count = len(images)
        softmax = _softmax_matrix(probabilities, count, len(class_names))
        predictions = softmax.argmax(axis=1)
        record = _Record(
            images=images,
            probabilities=softmax,
            predictions=predictions.astype(np.int64),
            predicted_classes=[class_names[int(index)] for index in predictions],
            confidences=softmax.max(axis=1),
            model_versions=[str(version) for version in model_versions],
            timestamp=pd.Timestamp.now(tz=UTC).floor("us"),
            request_id=request_id,
        )
        with self._lock:
            self._records.append(record)
            self._rows += count
            self._image_bytes += images.nbytes
            due = self._rows >= self.flush_rows or self._image_bytes >= self.flush_image_bytes
        if due:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._closed.is_set():
                break
            try:
                self.flush()
            except Exception:
                logger.exception("prediction log: write failed, rows kept for the next attempt")

    def flush(self) -> int:
        """Write every buffered row now; returns how many rows were written."""
        with self._write_lock:
            with self._lock:
                records, self._records = self._records, []
                self._rows = 0
                self._image_bytes = 0
            if not records:
                return 0
            try:
                table = _records_to_frame(records, self.image_max_pixels)
                for day, rows in table.groupby(table["timestamp"].dt.strftime("%Y-%m-%d"), sort=True):
                    self._write(str(day), rows.reset_index(drop=True))
            except Exception:
                with self._lock:  # keep them: the next flush (or close) tries again
                    self._records[:0] = records
                    self._rows += sum(len(record.predictions) for record in records)
                    self._image_bytes += sum(record.images.nbytes for record in records)
                raise
            return len(table)

    def _file_name(self) -> str:
        stamp = datetime.now(tz=UTC).strftime("%H%M%S%f")
        return f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"

    def _encode(self, rows: pd.DataFrame) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrow = pa.Table.from_pandas(rows, preserve_index=False)  # columns in `log_columns` order already
        position = arrow.schema.get_field_index(IMAGE_COLUMN)  # binary even when every image was too large
        arrow = arrow.set_column(position, IMAGE_COLUMN, arrow[IMAGE_COLUMN].cast(pa.binary()))
        provenance = json.dumps({"features_version": features.FEATURES_VERSION, "model": self.model})
        arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: provenance})
        sink = io.BytesIO()
        pq.write_table(arrow, sink)
        return sink.getvalue()

    def _write(self, day: str, rows: pd.DataFrame) -> None:
        data = self._encode(rows)
        relative = f"{self.model}/date={day}/{self._file_name()}"
        if self.store.startswith("s3://"):
            bucket, prefix = _split_s3(self.store)
            key = f"{prefix}/{relative}" if prefix else relative
            if self._s3 is None:
                import boto3

                self._s3 = boto3.client("s3")  # honours AWS_ENDPOINT_URL_S3 and the usual credentials chain
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        path = Path(self.store.removeprefix("file://")) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers never see a half-written file

    def close(self) -> int:
        """Stop the background writer and write what is left (the SIGTERM path)."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=10)
        written = self.flush()
        if written:
            logger.info("prediction log: flushed %d rows on shutdown", written)
        return written


def _softmax_matrix(probabilities: np.ndarray, images: int, classes: int) -> np.ndarray:
    """The request's probabilities as (images, classes) float64, or ValueError.

    Checked here, on the request path: a mis-shaped block accepted into the buffer would make every
    later flush fail on it (its rows are kept for a retry), so nothing else would be written.
    """
    softmax = np.asarray(probabilities, dtype=np.float64)
    if softmax.shape != (images, classes):
        raise ValueError(f"expected probabilities of shape ({images}, {classes}), got {softmax.shape}")
    return softmax


def _drift_features(records: list[_Record]) -> np.ndarray:
    """`features.drift_features` of every buffered image, in order, a chunk of requests per call."""
    blocks: list[np.ndarray] = []
    chunk: list[np.ndarray] = []
    pixels = 0
    for record in records:
        # as_image_batch is drift_features' own first step: uint8 and float requests can share a call.
        chunk.append(features.as_image_batch(record.images))
        pixels += record.images.size
        if pixels >= FEATURE_CHUNK_PIXELS:
            blocks.append(features.drift_features(np.concatenate(chunk)).to_numpy(dtype=np.float64))
            chunk, pixels = [], 0
    if chunk:
        blocks.append(features.drift_features(np.concatenate(chunk)).to_numpy(dtype=np.float64))
    return np.concatenate(blocks)


def _softmax_frame(records: list[_Record]) -> pd.DataFrame:
    """The softmax columns of every buffered row: one (rows, classes) float64 block, no per-row objects."""
    probabilities = np.concatenate([record.probabilities for record in records])
    return pd.DataFrame(probabilities, columns=pd.Index(features.softmax_columns(probabilities.shape[1])))


def _records_to_frame(records: list[_Record], image_max_pixels: int = DEFAULT_MAX_PIXELS) -> pd.DataFrame:
    """Every buffered row, with the columns of `log_columns` in that order."""
    frame = pd.DataFrame(_drift_features(records), columns=pd.Index(features.FEATURE_COLUMNS))
    frame["prediction"] = np.concatenate([record.predictions for record in records])
    frame["predicted_class"] = [name for record in records for name in record.predicted_classes]
    frame["confidence"] = np.concatenate([record.confidences for record in records])
    frame["model_version"] = [version for record in records for version in record.model_versions]
    frame["timestamp"] = pd.DatetimeIndex(
        [record.timestamp for record in records for _ in range(len(record.predictions))], dtype="datetime64[us, UTC]"
    )
    frame["request_id"] = [record.request_id for record in records for _ in range(len(record.predictions))]
    frame[IMAGE_INDEX_COLUMN] = np.concatenate(
        [np.arange(len(record.predictions), dtype=np.int64) for record in records]
    )
    # Joined as one block: inserting a column per class would fragment the frame (1,000 classes, 1,000 inserts).
    images = pd.DataFrame(
        {IMAGE_COLUMN: [png for record in records for png in encode_png(record.images, image_max_pixels)]}
    )
    return pd.concat([frame, _softmax_frame(records), images], axis=1)


def read_prediction_log(store: str, model: str) -> pd.DataFrame:
    """Every row logged for `model` in a local store (tests and the local loop).

    Files from before the softmax columns mix in: their rows get NaN there; when no file has the
    columns they are absent (an empty store gives `LOG_COLUMNS`: the class count is unknown).
    """
    root = Path(store.removeprefix("file://")) / model
    files = sorted(root.glob("date=*/*.parquet"))
    if not files:
        return pd.DataFrame(columns=pd.Index(LOG_COLUMNS))
    return pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
