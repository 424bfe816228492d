"""Rows repeated exactly (the same image sent again) are compared once: copies add no evidence, so a
window of copies decides as its distinct rows do, while images that differ at all are all kept."""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitoring.drift import DriftThresholds, compute_drift, distinct_rows, summarise_signals
from tests.monitoring.test_drift_decision import UNIFORM, reference, window


def _copies(frame: pd.DataFrame, times: int) -> pd.DataFrame:
    return pd.concat([frame] * times, ignore_index=True)


def _p_values(computation: object) -> dict[str, float]:
    return {family: test["p_value"] for family, test in summarise_signals(computation).items() if "p_value" in test}  # type: ignore[arg-type]


def test_a_window_of_copies_decides_as_its_distinct_rows() -> None:
    distinct = window(120, UNIFORM, seed=11)
    copied = _copies(distinct, 25)  # 3,000 rows, 120 images

    once = compute_drift(distinct, reference(), DriftThresholds())
    many = compute_drift(copied, reference(), DriftThresholds())

    assert many.repeated_rows == {"current": 3_000 - 120, "reference": 0}
    assert once.repeated_rows == {"current": 0, "reference": 0}
    assert _p_values(many) == _p_values(once)
    assert many.dataset_drift == once.dataset_drift
    assert {feature.current_rows for feature in many.features} == {120}


def test_rows_that_differ_in_any_value_are_all_kept() -> None:
    frame = _copies(window(50, UNIFORM, seed=12), 4)
    frame["brightness_mean"] = frame["brightness_mean"] + np.arange(len(frame)) * 1e-9

    kept, dropped = distinct_rows(frame)

    assert dropped == 0 and len(kept) == len(frame)


def test_extra_columns_do_not_hide_a_copy() -> None:
    """A request id or timestamp differs on every copy; the copy is still the same image."""
    frame = _copies(window(40, UNIFORM, seed=13), 3)
    frame["request_id"] = np.arange(len(frame))

    kept, dropped = distinct_rows(frame)

    assert dropped == 80 and len(kept) == 40
