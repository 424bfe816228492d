"""The quality job's verdicts and its summary, `quality.json` beside the drift job's reports.

Per (day, version) the verdict is one of
* `degraded`: the interval's upper bound is below the version's validation accuracy minus the margin
  — even the most favourable accuracy the labels allow is worse than the model was validated at;
* `ok`: enough labels and not degraded;
* `too_few_labels`: fewer labelled predictions than `min_labels` — said as such, never as ok: a
  handful of labels cannot show a drop of a few points;
* `no_validation_accuracy`: the version has no validation accuracy in the registry to compare with.

Beside each row, the label-free estimate of its accuracy (CBPE, `monitoring.quality_estimate`):
shown, logged and reported, but no verdict or alert rests on it.

The job's status: `degraded` when any row is, `ok` when at least one row was judged and none is
degraded, else the reason nothing was judged (`too_few_labels`, `no_validation_accuracy`, or
`skipped` for a window without predictions).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from monitoring.quality_metrics import Counted, Measured

if TYPE_CHECKING:  # the judging rules are the job's settings (min_labels, margin, confidence)
    from monitoring.quality_settings import QualitySettings

QUALITY_FILE = "quality.json"
DEGRADED = "degraded"
OK = "ok"
TOO_FEW_LABELS = "too_few_labels"
NO_VALIDATION = "no_validation_accuracy"
SKIPPED = "skipped"


@dataclass(frozen=True)
class QualityRow(Counted):
    """One version on one prediction day, judged."""

    interval_low: float | None
    interval_high: float | None
    validation_accuracy: float | None
    verdict: str
    reason: str
    estimated_accuracy: float | None = None
    """Label-free (CBPE) over every prediction of the row, labelled or not; never judged on."""
    estimated_standard_error: float | None = None
    estimate_note: str = "not estimated"


def judge(measured: Measured, validation_accuracy: float | None, rules: QualitySettings) -> QualityRow:
    verdict, reason = _verdict(measured, validation_accuracy, rules)
    low, high = measured.interval if measured.interval else (None, None)
    counted = {counted.name: getattr(measured, counted.name) for counted in fields(Counted)}
    return QualityRow(
        **counted,
        interval_low=low,
        interval_high=high,
        validation_accuracy=validation_accuracy,
        verdict=verdict,
        reason=reason,
    )


def _verdict(measured: Measured, validation: float | None, rules: QualitySettings) -> tuple[str, str]:
    if measured.labelled < rules.min_labels:
        return TOO_FEW_LABELS, f"too few labels ({measured.labelled} of {rules.min_labels})"
    if validation is None:
        return NO_VALIDATION, f"v{measured.model_version} has no validation accuracy in the registry"
    assert measured.interval is not None  # labelled >= min_labels >= 1
    high, floor = measured.interval[1], validation - rules.margin
    compared = (
        f"accuracy {measured.accuracy:.3f}, {rules.confidence:.0%} interval upper bound {high:.3f} "
        f"{'<' if high < floor else '>='} validation {validation:.3f} - margin {rules.margin:g}"
    )
    return (DEGRADED, compared) if high < floor else (OK, compared)


@dataclass(frozen=True)
class QualitySummary:
    """What `quality.json` holds (and the MLflow run logs)."""

    model: str
    date: str
    """The job's day: the last prediction day of the window."""
    generated_at: str
    status: str
    reason: str
    first_day: str
    lookback_days: int
    min_labels: int
    margin: float
    confidence: float
    predictions_store: str
    labels_store: str
    predictions: int
    """Predictions logged over the window."""
    unkeyed_predictions: int
    """Of them, from logs without `image_index`: no label can name them."""
    labels: int
    """Resolved labels received from `first_day` until the job ran."""
    matched: int
    unmatched: int
    """Labels whose prediction is not in the window (older, or not logged yet); kept for a later run."""
    verdicts: dict[str, int]
    rows: tuple[QualityRow, ...]
    alert: dict[str, Any] = field(default_factory=dict)
    retrain: dict[str, Any] = field(default_factory=dict)
    """What the retrain trigger did (only asked when the production version is degraded)."""
    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None
    summary: str | None = None
    """Where `quality.json` was written."""

    @property
    def degraded(self) -> tuple[QualityRow, ...]:
        return tuple(row for row in self.rows if row.verdict == DEGRADED)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


def overall(rows: Sequence[QualityRow], rules: QualitySettings) -> tuple[str, str]:
    """The job's status and its reason, from its rows."""
    counts = Counter(row.verdict for row in rows)
    if not rows:
        return SKIPPED, "skipped: no predictions in the window"
    if counts[DEGRADED]:
        return DEGRADED, f"{counts[DEGRADED]} of {len(rows)} (day, version) below validation accuracy"
    if counts[OK]:
        return OK, f"{counts[OK]} of {len(rows)} (day, version) judged, none below validation accuracy"
    if counts[TOO_FEW_LABELS] == len(rows):
        most = max(row.labelled for row in rows)
        return TOO_FEW_LABELS, f"too few labels (at most {most} of {rules.min_labels} on any day and version)"
    return NO_VALIDATION, "no version with enough labels has a validation accuracy in the registry"
