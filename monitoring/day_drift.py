"""What the drift job said about a day: its `summary.json`, read back by the jobs that act on it.

The labelling queue puts drifted days first; the quality job marks the label-free estimate of a
drifted day as one to doubt (calibration made on validation data may not hold on shifted inputs).
A day without a summary (the drift job has not run, or saw no traffic) counts as not drifted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from monitoring.store import Store
from monitoring.summary import SUMMARY_FILE
from monitoring.window import window_prefix


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
