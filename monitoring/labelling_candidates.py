"""Which production images to label first: the candidates of a window of days, in priority order.

A reviewer's hour is the scarce resource, so the queue spends it where a label tells the most:

1. **drifted days first** — a day the drift job flagged (its `summary.json` says `dataset_drift`),
   the most drifted first (`drifted_share`): that is where the model may be wrong and where the next
   training set lacks examples; then the other days, the newest first (a day without a drift
   summary counts as not drifted);
2. **low confidence first** within a day — uncertainty sampling: the images the model is least sure
   of are the likeliest errors and the most informative to train on.

Consequence for measurement: labels chosen this way over-represent hard images, so accuracy
measured on them alone (`monitoring.quality_job`) is pessimistic for a day whose images were
not all labelled; the label-free estimate (`monitoring.performance_estimate`) covers every image.

Only images the log kept (`image_png`, `workloads.serving.logged_images`) can be labelled; the
first pass reads the small columns only (the key, version, prediction, confidence), and the images
of the chosen rows are read afterwards (`read_images`), so a window of a million predictions never
holds its images in memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.drift import CONFIDENCE_COLUMN
from monitoring.store import Store
from monitoring.summary import SUMMARY_FILE
from monitoring.window import CLASS_NAME_COLUMN, VERSION_COLUMN, window_prefix
from workloads.serving.logged_images import IMAGE_COLUMN
from workloads.serving.prediction_log import IMAGE_INDEX_COLUMN

REQUEST_ID_COLUMN = "request_id"
KEY = [REQUEST_ID_COLUMN, IMAGE_INDEX_COLUMN]
READ_COLUMNS = [REQUEST_ID_COLUMN, IMAGE_INDEX_COLUMN, VERSION_COLUMN, CLASS_NAME_COLUMN, CONFIDENCE_COLUMN]
FILE_COLUMN, ROW_COLUMN, DAY_COLUMN = "file", "row", "day"


@dataclass(frozen=True)
class DayDrift:
    day: str
    drifted: bool
    drifted_share: float | None
    """None when the day has no drift summary (not run yet, or no traffic)."""


def day_drift(reports: Store, model: str, day: date) -> DayDrift:
    """What the drift job said about `day` (its summary.json), or "not drifted" when it said nothing."""
    raw = reports.read_if_present(f"{window_prefix(model, day.isoformat())}/{SUMMARY_FILE}")
    if raw is None:
        return DayDrift(day.isoformat(), False, None)
    summary = json.loads(raw)
    share = summary.get("drifted_share")
    return DayDrift(day.isoformat(), bool(summary.get("dataset_drift")), float(share) if share is not None else None)


def _has_images(metadata: pq.FileMetaData, schema: pa.Schema) -> bool:
    """Whether a log file kept its images: the column exists and is not null on every row (the
    size bound applies to the model's input size, so a file keeps all its images or none)."""
    if IMAGE_COLUMN not in schema.names or IMAGE_INDEX_COLUMN not in schema.names:
        return False
    position = schema.names.index(IMAGE_COLUMN)
    for group in range(metadata.num_row_groups):
        column = metadata.row_group(group).column(position)
        statistics = column.statistics
        if statistics is None or not statistics.has_null_count or statistics.null_count < column.num_values:
            return True
    return False


def read_candidates(predictions: Store, model: str, days: Sequence[date]) -> tuple[pd.DataFrame, int]:
    """Every logged prediction of `days` whose image was kept (key, version, prediction, confidence, day,
    and where its image is: file and row), and how many predictions had no image."""
    frames: list[pd.DataFrame] = []
    without_image = 0
    for day in days:
        for key in predictions.list(window_prefix(model, day.isoformat()), ".parquet"):
            parquet = pq.ParquetFile(predictions.open_for_arrow(key))
            if not _has_images(parquet.metadata, parquet.schema_arrow):
                without_image += parquet.metadata.num_rows
                continue
            frame = parquet.read(columns=READ_COLUMNS).to_pandas()
            frame[DAY_COLUMN] = day.isoformat()
            frame[FILE_COLUMN] = key
            frame[ROW_COLUMN] = range(len(frame))
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=pd.Index([*READ_COLUMNS, DAY_COLUMN, FILE_COLUMN, ROW_COLUMN])), without_image
    candidates = pd.concat(frames, ignore_index=True)
    # An image the log holds twice (a retried flush) is one candidate.
    return candidates.drop_duplicates(KEY, keep="first").reset_index(drop=True), without_image


def prioritise(candidates: pd.DataFrame, drift: Sequence[DayDrift]) -> pd.DataFrame:
    """The candidates in queue order: drifted days (most drifted first), then the other days (newest
    first); within a day the lowest confidence first, ties by key (the same order on every run)."""
    by_day = {item.day: item for item in drift}
    # Only a drifted day's share orders it: the other days go newest first, whatever their share.
    rank = {day: (0, -(item.drifted_share or 0.0)) if item.drifted else (1, 0.0) for day, item in by_day.items()}
    days = candidates[DAY_COLUMN].astype(str)
    ordered = candidates.assign(
        _not_drifted=[rank.get(day, (1, 0.0))[0] for day in days],
        _share=[rank.get(day, (1, 0.0))[1] for day in days],
        _day=pd.to_datetime(days),
    )
    ordered = ordered.sort_values(
        ["_not_drifted", "_share", "_day", CONFIDENCE_COLUMN, *KEY],
        ascending=[True, True, False, True, True, True],
        kind="stable",
    )
    return ordered.drop(columns=["_not_drifted", "_share", "_day"]).reset_index(drop=True)


def read_images(predictions: Store, chosen: pd.DataFrame) -> list[bytes | None]:
    """The PNG bytes of each chosen row, in the rows' order (one read of the image column per file)."""
    images: dict[tuple[str, int], bytes | None] = {}
    for key, rows in chosen.groupby(FILE_COLUMN, sort=True):
        column = pq.read_table(predictions.open_for_arrow(str(key)), columns=[IMAGE_COLUMN])[IMAGE_COLUMN]
        wanted = rows[ROW_COLUMN].astype(int).tolist()
        for row, value in zip(wanted, column.take(pa.array(wanted)).to_pylist(), strict=True):
            images[(str(key), row)] = value
    return [images[(str(key), int(row))] for key, row in zip(chosen[FILE_COLUMN], chosen[ROW_COLUMN], strict=True)]
