"""Reading one day of a model's prediction log: `<store>/<model>/date=YYYY-MM-DD/*.parquet`.

Only the columns the comparison needs are read (feature columns, predicted class, confidence, model
version), as Arrow tables; the majority model version is found on the Arrow column, and only the
sampled rows are converted to pandas. Peak memory is therefore about the size of the columns read,
whatever the sample (see benchmarks/drift.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from monitoring.drift import CONFIDENCE_COLUMN, PREDICTION_COLUMN, as_class_names
from monitoring.store import Store, window_prefix
from workloads import features

VERSION_COLUMN = "model_version"
CLASS_NAME_COLUMN = "predicted_class"


@dataclass
class Window:
    model: str
    day: str
    files: list[str]
    rows: int
    """Rows in the window, all versions."""
    versions: dict[str, int] = field(default_factory=dict)
    """Rows per model version, most frequent first."""
    table: Any = None
    """The Arrow table of the columns read (None when the window is empty)."""

    @property
    def empty(self) -> bool:
        return self.rows == 0

    @property
    def majority_version(self) -> str | None:
        return next(iter(self.versions), None)

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes) if self.table is not None else 0


def load_window(store: Store, model: str, day: str) -> Window:
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = store.list(window_prefix(model, day), ".parquet")
    wanted = [*features.FEATURE_COLUMNS, PREDICTION_COLUMN, CLASS_NAME_COLUMN, CONFIDENCE_COLUMN, VERSION_COLUMN]
    tables = []
    for key in keys:
        source = store.open_for_arrow(key)
        schema = pq.read_schema(source)
        if not isinstance(source, str):
            source.seek(0)
        # The model's softmax vector, where the log has it (files written before it have none).
        softmax = [name for name in schema.names if name.startswith(features.SOFTMAX_PREFIX)]
        columns = [name for name in wanted if name in schema.names] + softmax
        missing = [name for name in features.FEATURE_COLUMNS if name not in schema.names]
        if missing:
            raise ValueError(f"{store.uri_of(key)} lacks feature columns {', '.join(missing[:5])}")
        table = pq.read_table(source, columns=columns)
        if table.num_rows:
            tables.append(table)
    if not tables:
        return Window(model=model, day=day, files=keys, rows=0)
    table = pa.concat_tables(tables, promote_options="default")
    if VERSION_COLUMN in table.column_names:
        counted = table[VERSION_COLUMN].cast(pa.string()).value_counts()
        counts = Counter({str(item["values"]): int(item["counts"]) for item in counted.to_pylist()})
    else:
        counts = Counter({"unknown": table.num_rows})
    versions = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Window(model=model, day=day, files=keys, rows=table.num_rows, versions=versions, table=table)


def sample_window(
    window: Window, version: str | None, size: int, seed: int, class_names: Sequence[str] | None
) -> pd.DataFrame:
    """Up to `size` rows served by `version` (all rows when None), uniformly at random (seeded), as
    pandas with `prediction` as class names."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = window.table
    if version is not None and VERSION_COLUMN in table.column_names:
        # pyarrow.compute's kernels are generated at import; its stubs do not list them.
        mask = cast(Any, pc).equal(table[VERSION_COLUMN].cast(pa.string()), version)
        candidates = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    else:
        candidates = np.arange(table.num_rows)
    if candidates.size > size:
        candidates = np.sort(np.random.default_rng(seed).choice(candidates, size=size, replace=False))
    sample = table.take(pa.array(candidates)).to_pandas()
    if CLASS_NAME_COLUMN in sample.columns:
        predicted = sample[CLASS_NAME_COLUMN]
    elif PREDICTION_COLUMN in sample.columns:
        predicted = sample[PREDICTION_COLUMN]
    else:
        predicted = pd.Series([None] * len(sample), dtype="object")
    frame = sample[list(features.FEATURE_COLUMNS)].astype("float64")
    frame[PREDICTION_COLUMN] = as_class_names(predicted, class_names).to_numpy()
    frame[CONFIDENCE_COLUMN] = (
        sample[CONFIDENCE_COLUMN].astype("float64") if CONFIDENCE_COLUMN in sample.columns else np.nan
    )
    softmax = [name for name in sample.columns if str(name).startswith(features.SOFTMAX_PREFIX)]
    # Only a complete vector on every sampled row is compared (BBSD); rows from logs written before
    # it was recorded leave it out, and the decision falls back to the confidence.
    if softmax and not sample[softmax].isna().to_numpy().any():
        for name in softmax:
            frame[name] = sample[name].astype("float64")
    return frame
