"""Labels joined with the predictions they are about, over a window of prediction days.

Ground truth arrives late (a reviewer labels yesterday's images today, or next week), so the quality
job measures a window of prediction days — the last `lookback` days up to the job's day — against
every label received from the window's first day until the job runs. A label names its image as the
prediction log does, (`request_id`, `image_index`), and joins on those two (SageMaker Model
Monitor's model-quality monitor merges ground truth with captured predictions by inference id the
same way; Arize joins delayed actuals by prediction id over a window).

The prediction side stays in Arrow: only the four columns the join needs are read, and the join is
pyarrow's hash join, so a window of a million predictions is never a pandas frame. The result has
one row per labelled prediction, as small as the labels.

A label whose prediction is not in the window is *unmatched*: its prediction is older than the
window, or not written yet (the log is flushed seconds after the response), or its index lies past
its request's images. It is counted and left where it is — the store is append-only and this job
deletes nothing — so a later run whose window holds its prediction joins it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from monitoring.store import Store
from monitoring.window import CLASS_NAME_COLUMN, VERSION_COLUMN, window_prefix
from workloads.keyed_rows import key_codes, repeated
from workloads.serving.prediction_log import IMAGE_INDEX_COLUMN

REQUEST_ID_COLUMN = "request_id"
KEY = (REQUEST_ID_COLUMN, IMAGE_INDEX_COLUMN)
"""What names one served image on both sides."""
DAY_COLUMN = "day"
"""The prediction's UTC day (its log folder's date)."""
LABEL_COLUMN = "label"
READ_THREADS = 8
UNKNOWN_VERSION = "unknown"
PREDICTION_SCHEMA = pa.schema(
    [
        (REQUEST_ID_COLUMN, pa.string()),
        (IMAGE_INDEX_COLUMN, pa.int64()),
        (VERSION_COLUMN, pa.string()),
        (CLASS_NAME_COLUMN, pa.string()),
        (DAY_COLUMN, pa.string()),
    ]
)
LABEL_SCHEMA = pa.schema(
    [(REQUEST_ID_COLUMN, pa.string()), (IMAGE_INDEX_COLUMN, pa.int64()), (LABEL_COLUMN, pa.string())]
)
_compute = cast(Any, pc)  # pyarrow.compute's kernels are generated at import; its stubs do not list them


@dataclass(frozen=True)
class Joined:
    """The labelled predictions of a window, and what did not join."""

    table: pa.Table
    """One row per labelled prediction: `day`, `model_version`, `predicted_class`, `label` (and the key)."""
    predictions: pa.Table
    """Every prediction of the window (`PREDICTION_SCHEMA`), to count the (day, version)s that got no label."""
    labels: int
    """Resolved labels received over the window's days (one per image)."""
    matched: int
    """Labels whose prediction is in the window."""
    unkeyed_predictions: int
    """Predictions from logs written before `image_index` existed: no label can name them."""

    @property
    def unmatched(self) -> int:
        return self.labels - self.matched


def prediction_days(last: date, lookback: int) -> list[date]:
    """The `lookback` prediction days ending with `last`, oldest first."""
    return [last - timedelta(days=offset) for offset in range(lookback - 1, -1, -1)]


def read_predictions(store: Store, model: str, days: Sequence[date]) -> pa.Table:
    """The join's columns of every prediction logged for `model` on `days` (`PREDICTION_SCHEMA`)."""
    files = [(key, day) for day in days for key in store.list(window_prefix(model, day.isoformat()), ".parquet")]
    # A few files at a time: each is an S3 request, and parquet decoding releases the GIL.
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        tables = [table for table in pool.map(lambda item: _read_file(store, *item), files) if table.num_rows]
    if not tables:
        return PREDICTION_SCHEMA.empty_table()
    # One chunk per column: pyarrow's hash join over a table of one chunk per log file (hundreds) took
    # 2-3x as long as over the same table combined (benchmarks/quality_join.py), far more than the copy.
    return pa.concat_tables(tables).combine_chunks()


def _read_file(store: Store, key: str, day: date) -> pa.Table:
    parquet = pq.ParquetFile(store.open_for_arrow(key))  # one footer read for the schema and the columns
    names = parquet.schema_arrow.names
    missing = [name for name in (REQUEST_ID_COLUMN, CLASS_NAME_COLUMN) if name not in names]
    if missing:
        raise ValueError(f"{store.uri_of(key)} lacks the columns {', '.join(missing)}")
    wanted = [
        name for name in (REQUEST_ID_COLUMN, IMAGE_INDEX_COLUMN, VERSION_COLUMN, CLASS_NAME_COLUMN) if name in names
    ]
    table = parquet.read(columns=wanted)
    rows = table.num_rows
    if IMAGE_INDEX_COLUMN not in names:  # logged before image_index existed: null, so it joins nothing
        table = table.append_column(IMAGE_INDEX_COLUMN, pa.nulls(rows, pa.int64()))
    if VERSION_COLUMN not in names:
        table = table.append_column(VERSION_COLUMN, pa.repeat(UNKNOWN_VERSION, rows))
    table = table.append_column(DAY_COLUMN, pa.repeat(day.isoformat(), rows))
    return table.select(PREDICTION_SCHEMA.names).cast(PREDICTION_SCHEMA)


def labels_table(labels: pd.DataFrame | pa.Table | None) -> pa.Table:
    """The resolved labels (`LabelStore.load_table`, or `load`'s frame) as the join's right side (`LABEL_SCHEMA`)."""
    if labels is None:
        return LABEL_SCHEMA.empty_table()
    if isinstance(labels, pd.DataFrame):
        return pa.Table.from_pandas(labels[list(LABEL_SCHEMA.names)], preserve_index=False).cast(LABEL_SCHEMA)
    return labels.select(LABEL_SCHEMA.names).cast(LABEL_SCHEMA)


def join(predictions: pa.Table, labels: pa.Table) -> Joined:
    """Each label with the prediction it names (inner join on `KEY`); counts of what did not join."""
    has_index = predictions[IMAGE_INDEX_COLUMN].null_count == 0
    keyed = predictions if has_index else predictions.filter(_compute.is_valid(predictions[IMAGE_INDEX_COLUMN]))
    # One hash join, its table built on the labels (the small side). The labels are resolved (one per
    # image), so the labels that found their prediction are the distinct keys of the result: counted
    # there, not by a second join that would hash the whole window (it cost as much as the join).
    joined = keyed.join(labels, keys=list(KEY), join_type="inner")
    # The log can hold an image twice: a flush that spans midnight writes one file per day and, when
    # a later day's write fails, retries every row, the day already written included. One vote each.
    again = repeated(key_codes(joined, KEY), keep="first")
    if again.any():
        joined = joined.filter(pa.array(~again))
    matched = joined.num_rows
    return Joined(
        table=joined,
        predictions=predictions,
        labels=labels.num_rows,
        matched=matched,
        unkeyed_predictions=predictions.num_rows - keyed.num_rows,
    )
