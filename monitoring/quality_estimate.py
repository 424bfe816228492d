"""The quality job's label-free accuracy: CBPE (`monitoring.performance_estimate`) per (day, version).

Every (day, version) the job measures gets an estimate from all of its predictions — labelled or
not — so a day nobody labelled still shows how accurate the model probably was, and a labelled day
shows the estimate beside the measurement. The alert stays on measured accuracy: an estimate is
only as good as its calibration, and cannot see a shift that makes the model confidently wrong.

Each version is calibrated on its own validation predictions, the table the training pipeline
attaches to it (`reference.validation_predictions`), downloaded once per run. The window is read
file by file (the softmax columns, the version) and summed per (day, version), so memory holds one
file's softmax block at a time whatever the window's size or the class count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow.parquet as pq

from monitoring.performance_estimate import Calibration
from monitoring.store import Store
from monitoring.window import VERSION_COLUMN, window_prefix
from workloads import features

Group = tuple[str, str]
"""(prediction day, model version)."""
CalibrationLookup = Callable[[str], Calibration | str]
"""model version → its calibration, or why there is none."""


@dataclass
class _Sums:
    right: float = 0.0
    variance: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class EstimatedAccuracy:
    accuracy: float | None
    standard_error: float | None
    predictions: int
    """Predictions the estimate covers (those logged with their softmax vector)."""
    note: str
    """How it was estimated, or why it could not be."""


@dataclass
class _Window:
    sums: dict[Group, _Sums] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    """version → why it has no calibration."""
    without_softmax: dict[Group, int] = field(default_factory=dict)


def registry_calibration(client: object, model: str) -> CalibrationLookup:
    """Each version's calibration, fitted on its validation predictions from the registry (cached)."""
    from mlflow.exceptions import MlflowException

    from workloads.reference import VALIDATION_PREDICTIONS_TAG, MissingReferenceError, download_reference

    cache: dict[str, Calibration | str] = {}

    def lookup(version: str) -> Calibration | str:
        if version not in cache:
            try:
                table, _ = download_reference(model, version, VALIDATION_PREDICTIONS_TAG, client=client)
                columns = [name for name in table.columns if str(name).startswith(features.SOFTMAX_PREFIX)]
                if not columns:
                    raise MissingReferenceError("its validation predictions have no softmax columns")
                ordered = features.softmax_columns(len(columns))
                cache[version] = Calibration.fit(table[ordered].to_numpy(), table["label"].to_numpy())
            except (MissingReferenceError, MlflowException, KeyError, ValueError) as error:
                message = error.message if isinstance(error, MlflowException) else str(error)
                cache[version] = f"no calibration for v{version}: {message}"
        return cache[version]

    return lookup


def _add_file(window: _Window, store: Store, key: str, day: str, calibration: CalibrationLookup) -> None:
    source = store.open_for_arrow(key)
    names = pq.read_schema(source).names
    if not isinstance(source, str):
        source.seek(0)
    softmax = [name for name in names if name.startswith(features.SOFTMAX_PREFIX)]
    ordered = features.softmax_columns(len(softmax)) if softmax else []
    table = pq.read_table(source, columns=[VERSION_COLUMN, *ordered]).to_pandas()
    for version, rows in table.groupby(VERSION_COLUMN, sort=True):
        group = (day, str(version))
        values = rows[ordered].to_numpy(dtype=np.float64) if ordered else np.empty((len(rows), 0))
        complete = ~np.isnan(values).any(axis=1) if ordered else np.zeros(len(rows), dtype=bool)
        if not complete.all():
            window.without_softmax[group] = window.without_softmax.get(group, 0) + int((~complete).sum())
        if not complete.any():
            continue
        fitted = calibration(str(version))
        if isinstance(fitted, str):
            window.missing[str(version)] = fitted
            continue
        right = fitted.calibrate(values[complete])[np.arange(int(complete.sum())), values[complete].argmax(axis=1)]
        sums = window.sums.setdefault(group, _Sums())
        sums.right += float(right.sum())
        sums.variance += float((right * (1.0 - right)).sum())
        sums.count += len(right)


def estimate_window(
    store: Store, model: str, days: Sequence[date], groups: Sequence[Group], calibration: CalibrationLookup
) -> dict[Group, EstimatedAccuracy]:
    """The CBPE estimate of every (day, version) in `groups` from the window's prediction log."""
    window = _Window()
    for day in days:
        for key in store.list(window_prefix(model, day.isoformat()), ".parquet"):
            _add_file(window, store, key, day.isoformat(), calibration)
    estimates = {}
    for group in groups:
        sums = window.sums.get(group)
        skipped = window.without_softmax.get(group, 0)
        if sums is None or not sums.count:
            why = window.missing.get(group[1]) or "no prediction logged with its softmax vector"
            estimates[group] = EstimatedAccuracy(None, None, 0, why)
            continue
        note = f"CBPE over {sums.count} predictions, calibrated on v{group[1]}'s validation predictions"
        if skipped:
            note += f"; {skipped} logged without softmax not covered"
        error = float(np.sqrt(sums.variance)) / sums.count
        estimates[group] = EstimatedAccuracy(sums.right / sums.count, error, sums.count, note)
    return estimates
