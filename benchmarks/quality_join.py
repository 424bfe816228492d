"""The quality job's join + accuracy over 1,000,000 predictions and 100,000 labels, against plain pyarrow.

    .venv/bin/python benchmarks/quality_join.py [--predictions 1000000] [--labels 100000] [--repeats 3]

Data, written once into a temporary folder in the platform's layouts: a 7-day prediction log
(`<store>/digits/date=<day>/*.parquet`, files of 10,000 rows with every column the service writes:
23 drift features, the prediction, its class and confidence, the version — v1 until mid-week, then
v2 —, timestamp, request id, image index, 10 softmax columns, a 140-byte PNG per row), requests of
16 images; and 100,000 labels of random predictions (5 % name a request the log does not hold), in
100 files of 1,000 written by the labels store (`LabelStore.write`, as 100 imports would).

(a) ours: `monitoring.quality_job.measure_quality` — read the window's four join columns per file,
read and resolve the labels (the last per image wins), pyarrow's hash join, dedupe, then per
(day, version) accuracy with its Wilson interval, macro-F1 and the verdict. Everything the quality
job does but the registry lookups and writing the report.

(b) baseline: plain pyarrow on the same files — `pyarrow.dataset` with hive partitioning for both
sides (the day comes from the folder), an inner join on (request_id, image_index), and accuracy per
(day, version) with `group_by` — no label resolution, no interval, no F1.

Fastest of `--repeats` rounds each, interleaved (so outside load falls on both alike); ratio (a)/(b),
goal <= 2.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitoring.quality_job import measure_quality
from monitoring.quality_settings import QualitySettings
from workloads import catalogue, features
from workloads.labels.record import LabelRecord, label_studio_source
from workloads.labels.store import LabelStore
from workloads.serving.prediction_log import log_columns

MODEL = "digits"
DAYS = 7
LAST_DAY = date(2026, 11, 27)
ROWS_PER_FILE = 10_000
IMAGES_PER_REQUEST = 16
LABEL_FILES = 100


def write_log(root: Path, rows: int, generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The prediction log; returns every row's (request id, image index, predicted class index)."""
    classes = np.asarray(catalogue.get(MODEL).class_names, dtype=object)
    requests = np.arange(rows) // IMAGES_PER_REQUEST
    request_ids = np.array([f"{value:032x}" for value in generator.permutation(requests.max() + 1)])[requests]
    indices = (np.arange(rows) % IMAGES_PER_REQUEST).astype(np.int64)
    predicted = generator.integers(0, len(classes), size=rows)
    columns = log_columns(len(classes))
    png = bytes(generator.integers(0, 256, size=140, dtype=np.uint8))
    for number, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        stop = min(rows, start + ROWS_PER_FILE)
        count = stop - start
        day = LAST_DAY - timedelta(days=DAYS - 1 - (start * DAYS) // rows)
        data: dict[str, pa.Array] = {name: pa.array(generator.random(count)) for name in features.FEATURE_COLUMNS}
        data["prediction"] = pa.array(predicted[start:stop].astype(np.int64))
        data["predicted_class"] = pa.array(classes[predicted[start:stop]].tolist(), pa.string())
        data["confidence"] = pa.array(generator.random(count))
        data["model_version"] = pa.array(["1" if day < LAST_DAY - timedelta(days=3) else "2"] * count)
        stamp = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        data["timestamp"] = pa.array([stamp] * count, pa.timestamp("us", tz="UTC"))
        data["request_id"] = pa.array(request_ids[start:stop].tolist(), pa.string())
        data["image_index"] = pa.array(indices[start:stop])
        for name in features.softmax_columns(len(classes)):
            data[name] = pa.array(generator.random(count))
        data["image_png"] = pa.array([png] * count, pa.binary())
        folder = root / MODEL / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({name: data[name] for name in columns}), folder / f"{number:06d}-bench.parquet")
    return request_ids, indices, predicted


def write_labels(root: Path, logged: tuple[np.ndarray, np.ndarray, np.ndarray], count: int, seed: int) -> None:
    generator = np.random.default_rng(seed)
    request_ids, indices, predicted = logged
    classes = catalogue.get(MODEL).class_names
    rows = generator.choice(len(request_ids), size=count, replace=False)
    truth = np.where(generator.random(count) < 0.9, predicted[rows], generator.integers(0, len(classes), size=count))
    unknown = generator.random(count) < 0.05  # labels for requests not (yet) in the log
    store = LabelStore(str(root))
    received = datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, 18, tzinfo=UTC)
    for part, chunk in enumerate(np.array_split(np.arange(count), LABEL_FILES)):
        records = [
            LabelRecord(
                MODEL,
                f"{generator.integers(0, 2**63):032x}" if unknown[row] else str(request_ids[rows[row]]),
                int(indices[rows[row]]),
                classes[int(truth[row])],
                label_studio_source(f"export-{part}.json"),
                received + timedelta(seconds=part),
            )
            for row in chunk
        ]
        store.write(records)


def ours(settings: QualitySettings) -> tuple[float, int]:
    started = time.perf_counter()
    now = datetime(LAST_DAY.year, LAST_DAY.month, LAST_DAY.day, 23, tzinfo=UTC)
    summary = measure_quality(MODEL, LAST_DAY, now, settings, {"1": 0.97, "2": 0.98}.get)
    return time.perf_counter() - started, summary.matched


def baseline(predictions: Path, labels: Path) -> tuple[float, int]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    started = time.perf_counter()
    logged = ds.dataset(predictions / MODEL, format="parquet", partitioning="hive").to_table(
        columns=["request_id", "image_index", "model_version", "predicted_class", "date"]
    )
    labelled = ds.dataset(labels / MODEL, format="parquet", partitioning="hive").to_table(
        columns=["request_id", "image_index", "label"]
    )
    joined = logged.join(labelled, keys=["request_id", "image_index"], join_type="inner")
    correct = pc.cast(pc.equal(joined["predicted_class"], joined["label"]), pa.int64())  # pyright: ignore[reportAttributeAccessIssue]
    joined = joined.append_column("correct", correct)
    per_group = joined.group_by(["date", "model_version"]).aggregate([("correct", "sum"), ("correct", "count")])
    accuracy = pc.divide(pc.cast(per_group["correct_sum"], pa.float64()), per_group["correct_count"])  # pyright: ignore[reportAttributeAccessIssue]
    assert len(accuracy) == per_group.num_rows
    return time.perf_counter() - started, joined.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quality-join-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        logged = write_log(root / "predictions", arguments.predictions, np.random.default_rng(0))
        write_labels(root / "labels", logged, arguments.labels, seed=1)
        print(f"wrote {arguments.predictions:,} predictions and {arguments.labels:,} labels in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        settings = QualitySettings(
            predictions_store=str(root / "predictions"),
            labels_store=str(root / "labels"),
            reports_store=str(root / "reports"),
            lookback_days=DAYS,
        )
        ours(settings), baseline(root / "predictions", root / "labels")  # warm: imports, page cache
        timings: dict[str, list[float]] = {"ours": [], "baseline": []}
        for round_number in range(arguments.repeats):
            seconds, matched = ours(settings)
            timings["ours"].append(seconds)
            base_seconds, base_matched = baseline(root / "predictions", root / "labels")
            timings["baseline"].append(base_seconds)
            print(f"  round {round_number + 1}: ours {seconds:.2f} s ({matched:,} matched), "
                  f"pyarrow {base_seconds:.2f} s ({base_matched:,} joined)")  # fmt: skip
    best_ours, best_base = min(timings["ours"]), min(timings["baseline"])
    per_round = sorted(mine / theirs for mine, theirs in zip(timings["ours"], timings["baseline"], strict=True))
    median = per_round[len(per_round) // 2]
    print(
        f"fastest: ours {best_ours:.2f} s, plain pyarrow {best_base:.2f} s: ratio {best_ours / best_base:.2f} "
        f"(goal <= 2); per-round ratios {', '.join(f'{value:.2f}' for value in per_round)}, median {median:.2f}"
    )


if __name__ == "__main__":
    main()
