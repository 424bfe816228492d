"""The daily window hands the log's softmax vector to the comparison, and only a complete one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.store import Store
from monitoring.window import load_window, sample_window
from workloads import features

CLASSES = ("a", "b", "c")


def _log_file(folder: Path, name: str, rows: int, with_softmax: bool) -> None:
    rng = np.random.default_rng(len(name))
    frame = pd.DataFrame(rng.random((rows, len(features.FEATURE_COLUMNS))), columns=list(features.FEATURE_COLUMNS))
    frame["prediction"] = rng.integers(0, 3, rows)
    frame["predicted_class"] = [CLASSES[i] for i in frame["prediction"]]
    frame["confidence"] = rng.random(rows)
    frame["model_version"] = "1"
    if with_softmax:
        probabilities = rng.dirichlet(np.ones(3), rows)
        for column, values in zip(features.softmax_columns(3), probabilities.T, strict=True):
            frame[column] = values
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / name)


def test_the_softmax_reaches_the_sample(tmp_path: Path) -> None:
    _log_file(tmp_path / "digits" / "date=2026-12-01", "part-1.parquet", 50, with_softmax=True)
    window = load_window(Store(str(tmp_path)), "digits", "2026-12-01")
    sample = sample_window(window, "1", 20, seed=0, class_names=CLASSES)
    assert [c for c in sample.columns if c.startswith(features.SOFTMAX_PREFIX)] == features.softmax_columns(3)
    assert np.allclose(sample[features.softmax_columns(3)].sum(axis=1), 1.0)


def test_a_day_with_older_log_files_compares_no_partial_softmax(tmp_path: Path) -> None:
    day = tmp_path / "digits" / "date=2026-12-01"
    _log_file(day, "part-1.parquet", 30, with_softmax=True)
    _log_file(day, "part-0.parquet", 30, with_softmax=False)  # written before the vector was logged
    window = load_window(Store(str(tmp_path)), "digits", "2026-12-01")
    assert window.rows == 60
    sample = sample_window(window, "1", 60, seed=0, class_names=CLASSES)
    assert not [c for c in sample.columns if c.startswith(features.SOFTMAX_PREFIX)]
    assert sample["confidence"].notna().all()
