"""The labels store: `<store>/<model>/date=YYYY-MM-DD/<time>-<pid>-<id>.parquet`, beside the prediction log.

`store` is a local folder or `s3://bucket/prefix` (`workloads.object_store`), `MLOPS_LABELS_STORE`
for the service (default `.mlops/labels`). The date is the UTC day each label was *received*: it is
known when the label is written, while the day of its prediction is not (a label may arrive before
its request is in the log). A reader that joins labels to a day of predictions therefore reads the
labels from that day onwards.

Each write — one feedback request, one import — is its own file, written once and never changed
(`resolve` says why); the file holds `record.LABEL_COLUMNS`: `model`, `request_id`, `label`,
`source` (strings), `image_index` (int64), `received_at` (UTC, microseconds), `annotator` (string,
null when unknown). Files written before `annotator` existed lack the column: read, it is null.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pandas as pd
import pyarrow as pa

from workloads.labels.record import ANNOTATOR_COLUMN, LABEL_COLUMNS, LabelRecord
from workloads.labels.resolve import resolve_labels, resolve_table
from workloads.object_store import ObjectStore

_COLUMN_TYPES = {
    "model": pa.string(),
    "request_id": pa.string(),
    "image_index": pa.int64(),
    "label": pa.string(),
    "source": pa.string(),
    "received_at": pa.timestamp("us", tz="UTC"),
    ANNOTATOR_COLUMN: pa.string(),
}
LABEL_SCHEMA = pa.schema([(name, _COLUMN_TYPES[name]) for name in LABEL_COLUMNS])
"""`LABEL_COLUMNS` as Arrow types: what a labels file holds (an all-unknown `annotator` would be null-typed)."""
READ_THREADS = 8
"""Label files read at once (each is an S3 request; a day of imports is many small files)."""


def day_prefix(model: str, day: date) -> str:
    return f"{model}/date={day.isoformat()}"


def records_frame(records: Sequence[LabelRecord]) -> pd.DataFrame:
    """The records as a labels file's rows, in `LABEL_COLUMNS` order and types."""
    frame = pd.DataFrame(
        {
            "model": pd.Series([record.model for record in records], dtype="object"),
            "request_id": pd.Series([record.request_id for record in records], dtype="object"),
            "image_index": pd.Series([record.image_index for record in records], dtype="int64"),
            "label": pd.Series([record.label for record in records], dtype="object"),
            "source": pd.Series([record.source for record in records], dtype="object"),
            "received_at": pd.DatetimeIndex([record.received_at for record in records], dtype="datetime64[us, UTC]"),
            ANNOTATOR_COLUMN: pd.Series([record.annotator for record in records], dtype="object"),
        }
    )
    return frame.reindex(columns=list(LABEL_COLUMNS))


def _empty_frame() -> pd.DataFrame:
    return records_frame([])


class LabelStore:
    """Append-only writer and reader of labels under one store URI."""

    def __init__(self, uri: str) -> None:
        self.objects = ObjectStore(uri)

    @property
    def uri(self) -> str:
        return self.objects.uri

    def write(self, records: Sequence[LabelRecord]) -> list[str]:
        """Store the records: one new file per model and received day; returns the files' URIs."""
        if not records:
            return []
        frame = records_frame(records)
        days = frame["received_at"].dt.strftime("%Y-%m-%d")
        written: list[str] = []
        for group, rows in frame.groupby([frame["model"], days], sort=True):
            model, day = cast(tuple[str, str], group)
            key = f"{model}/date={day}/{_file_name()}"
            written.append(self.objects.write(key, _parquet(rows.reset_index(drop=True))))
        return written

    def files(self, model: str, start: date, end: date) -> list[tuple[str, bytes]]:
        """(key, bytes) of every labels file for `model` received from `start` to `end`, in store order."""
        found: list[tuple[str, bytes]] = []
        day = start
        while day <= end:
            found += [(key, self.objects.read(key)) for key in self.objects.list(day_prefix(model, day), ".parquet")]
            day += timedelta(days=1)
        return found

    def read_table(self, model: str, start: date, end: date) -> pa.Table | None:
        """Every stored row for `model` received from `start` to `end` (inclusive), in store order,
        unresolved, as Arrow (None when there are none). Files are read a few at a time: on S3 each
        is a request, and locally decoding releases the GIL."""
        import pyarrow.parquet as pq

        keys = []
        day = start
        while day <= end:
            keys.extend(self.objects.list(day_prefix(model, day), ".parquet"))
            day += timedelta(days=1)

        def read(key: str) -> pa.Table:
            return _with_label_columns(pq.ParquetFile(io.BytesIO(self.objects.read(key))))

        with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
            tables = [table for table in pool.map(read, keys) if table.num_rows]  # map keeps the store order
        return pa.concat_tables(tables) if tables else None

    def read(self, model: str, start: date, end: date) -> pd.DataFrame:
        """Every stored row for `model` received from `start` to `end` (inclusive), in store order, unresolved."""
        table = self.read_table(model, start, end)
        if table is None:
            return _empty_frame()
        return table.to_pandas().reindex(columns=list(LABEL_COLUMNS))

    def load_table(self, model: str, start: date, end: date) -> pa.Table | None:
        """`load` in Arrow and in no particular order, for the quality job's join (None when no label was received)."""
        table = self.read_table(model, start, end)
        return resolve_table(table, by_key=False) if table is not None else None

    def load(self, model: str, start: date, end: date) -> pd.DataFrame:
        """The labels that stand for `model` over the received days `start`..`end`: one row per image."""
        return resolve_labels(self.read(model, start, end))


def rows_of(files: Sequence[bytes]) -> pd.DataFrame:
    """The rows of labels files (their bytes, in store order) as one frame, unresolved."""
    import pyarrow.parquet as pq

    tables = [table for table in (_with_label_columns(pq.ParquetFile(io.BytesIO(data))) for data in files)]
    tables = [table for table in tables if table.num_rows]
    if not tables:
        return _empty_frame()
    return pa.concat_tables(tables).to_pandas().reindex(columns=list(LABEL_COLUMNS))


def _with_label_columns(parquet: Any) -> pa.Table:
    """A labels file's `LABEL_COLUMNS` in `LABEL_SCHEMA`'s types; a file older than the `annotator`
    column gets it null (unknown). Typed once here, so files of either age concatenate."""
    present = parquet.schema_arrow.names
    table = parquet.read(columns=[name for name in LABEL_COLUMNS if name in present])
    if ANNOTATOR_COLUMN not in present:
        table = table.append_column(ANNOTATOR_COLUMN, pa.nulls(table.num_rows, pa.string()))
    return table.select(list(LABEL_COLUMNS)).cast(LABEL_SCHEMA)


def _file_name() -> str:
    # Time first: files sort in write order, the tie-break `resolve` relies on after received_at.
    stamp = datetime.now(tz=UTC).strftime("%H%M%S%f")
    return f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"


def _parquet(rows: pd.DataFrame) -> bytes:
    import pyarrow.parquet as pq

    # The schema given: a write whose labels all lack an annotator would store Arrow's null type.
    table = pa.Table.from_pandas(rows, schema=LABEL_SCHEMA, preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()
