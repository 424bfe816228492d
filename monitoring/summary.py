"""What one drift-job execution found and did: the typed summary, its `summary.json`, its console text.

`summary.json` (under `<reports>/<model>/date=YYYY-MM-DD/`) is read by people, by the local loop and
by the tests, so its keys and values are a contract: `as_dict` writes exactly the object the job
has always written, with the keys in the order it has always inserted them (MLflow's copy of the
file keeps that order; the reports store's copy sorts them). Two shapes, by what the day held:

- `SkippedSummary`: no traffic, nothing compared (`status` `skipped`, `dataset_drift` null);
- `ComparedSummary`: the window compared with its reference (`status` `drift` or `no_drift`).

The nested per-signal and per-feature summaries are `monitoring.drift`'s (`summarise_signals`,
`summarise_features`), carried as that module builds them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SUMMARY_FILE = "summary.json"
SKIPPED = "skipped"
DRIFT = "drift"
NO_DRIFT = "no_drift"
NO_TRAFFIC = "skipped: no traffic"


def _declared(facts: DataclassInstance) -> dict[str, Any]:
    """The fields' values in declaration order, as they are (`asdict` would copy and convert them)."""
    return {field.name: getattr(facts, field.name) for field in fields(facts)}


@dataclass(frozen=True)
class WindowFacts:
    """The day's prediction log, before anything is compared."""

    model: str
    date: str
    generated_at: str
    predictions: str
    """URI of the day's folder of the prediction log."""
    files: int
    rows_in_window: int
    model_versions: Mapping[str, int]
    """Rows per model version, most frequent first."""

    def as_dict(self) -> dict[str, Any]:
        return {**_declared(self), "model_versions": dict(self.model_versions)}


@dataclass(frozen=True)
class ReferenceRows:
    """Rows of the compared version's reference tables, one per split it was trained and validated on."""

    training: int
    validation: int

    def as_dict(self) -> dict[str, Any]:
        return _declared(self)


@dataclass(frozen=True)
class GroupVerdict:
    """What comparing the window with one distribution the version learned found (`monitoring.reference_groups`)."""

    name: str
    training_rows: int
    dataset_drift: bool | None
    drifted_share: float | None
    reported: bool = False
    """The comparison the summary's other keys (and report.html) describe."""
    skipped: str | None = None
    """Why the group was not compared (too few images, or an earlier group matched); None if it was."""

    def as_dict(self) -> dict[str, Any]:
        return _declared(self)


@dataclass(frozen=True)
class Comparison:
    """What comparing the window's sample with the reference found (`monitoring.comparison`)."""

    note: str | None
    """Set when the window mixes model versions: which one was compared."""
    dataset_drift: bool
    deciding_signals: tuple[str, ...]
    significance_level: float
    signals: Mapping[str, Mapping[str, Any]]
    drifted_share: float
    drifted_features: tuple[str, ...]
    model_version: str
    rows_compared: int
    rows_repeated: int
    """Rows of the sample that repeat another exactly: the same image again, compared once."""
    rows_of_version: int
    reference_rows: ReferenceRows
    reference_source: str
    reference_dataset: str
    sample_size: int
    features: Mapping[str, Mapping[str, Any]]
    reference_groups: tuple[GroupVerdict, ...] = ()
    """Per distribution the version learned, when it learned more than one (empty: one reference)."""

    def as_dict(self) -> dict[str, Any]:
        """The comparison's keys, `status` among them, in the order summary.json has them."""
        note = {} if self.note is None else {"note": self.note}
        learned = [group.as_dict() for group in self.reference_groups]
        groups = {"reference_groups": learned} if learned else {}
        return {
            **note,
            "status": DRIFT if self.dataset_drift else NO_DRIFT,
            "dataset_drift": self.dataset_drift,
            "deciding_signals": list(self.deciding_signals),
            "significance_level": self.significance_level,
            "signals": dict(self.signals),
            "drifted_share": self.drifted_share,
            "drifted_features": list(self.drifted_features),
            "model_version": self.model_version,
            "rows_compared": self.rows_compared,
            "rows_repeated": self.rows_repeated,
            "rows_of_version": self.rows_of_version,
            "reference_rows": self.reference_rows.as_dict(),
            "reference_source": self.reference_source,
            "reference_dataset": self.reference_dataset,
            "sample_size": self.sample_size,
            "features": dict(self.features),
            **groups,
        }


class _Outcome:
    """An outcome names only what applies to it: `{"sent": false, "reason": "cooldown", ...}`."""

    def as_dict(self) -> dict[str, Any]:
        assert is_dataclass(self)  # for the type checker: each outcome below is a dataclass
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in _declared(self).items()
            if value is not None
        }


@dataclass(frozen=True)
class AlertOutcome(_Outcome):
    """Whether the alert went out, and why not when it did not (`monitoring.actions`)."""

    sent: bool
    kind: str | None = None
    """`drift` or `skipped`; None when there was nothing to alert about."""
    reason: str | None = None
    """Why it did not go out: `cooldown`, `no channel configured`, `delivery failed: ...`."""
    suppressed_until: str | None = None
    """With `cooldown`: when the cooldown of the alert last sent ends (ISO 8601, UTC)."""
    channels: tuple[str, ...] | None = None
    """Where it went when sent: `webhook`, `sns`."""
    text: str | None = None
    """The message sent."""


@dataclass(frozen=True)
class RetrainOutcome(_Outcome):
    """Whether a training run was submitted, and why not when it was not (`monitoring.actions`)."""

    submitted: bool
    reason: str | None = None
    suppressed_until: str | None = None
    outcome: str | None = None
    """The submitter's own account of the run it started."""
    new_labels: int | None = None
    """Labelled production images the newest dataset version lacked when the trigger looked."""
    dataset_version: str | None = None
    """The version snapshotted for the retrain (base + those images)."""


@dataclass(frozen=True)
class RunLink:
    """The job's MLflow run (`monitoring.run_record`)."""

    run_id: str
    url: str | None
    """The run in the tracking UI; None when the tracking URI is not an http(s) server."""


@dataclass(frozen=True)
class SkippedSummary:
    """A day without traffic: drift was not evaluated, and that is alerted as its own kind."""

    status: ClassVar[str] = SKIPPED
    dataset_drift: ClassVar[None] = None

    window: WindowFacts
    run: RunLink
    alert: AlertOutcome
    summary: str | None = None
    """Where summary.json was written; set once it is, so the file itself never holds it."""

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.window.as_dict(),
            "status": SKIPPED,
            "reason": NO_TRAFFIC,
            "dataset_drift": None,
            "rows_compared": 0,
            "mlflow_run_id": self.run.run_id,
            "mlflow_run_url": self.run.url,
            "alert": self.alert.as_dict(),
            **_written_at(self.summary),
        }

    def to_json(self) -> bytes:
        return _json(self.as_dict())

    def written_to(self, uri: str) -> SkippedSummary:
        return replace(self, summary=uri)


@dataclass(frozen=True)
class ComparedSummary:
    """A day compared with the reference of the version that served it."""

    window: WindowFacts
    comparison: Comparison
    run: RunLink
    report: str
    """URI of report.html in the reports store."""
    report_link: str
    """Where the alert points: the reports URL, else the MLflow run, else the report's URI."""
    alert: AlertOutcome
    retrain: RetrainOutcome
    summary: str | None = None
    """Where summary.json was written; set once it is, so the file itself never holds it."""

    @property
    def status(self) -> str:
        return DRIFT if self.comparison.dataset_drift else NO_DRIFT

    @property
    def dataset_drift(self) -> bool:
        return self.comparison.dataset_drift

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.window.as_dict(),
            **self.comparison.as_dict(),
            "mlflow_run_id": self.run.run_id,
            "mlflow_run_url": self.run.url,
            "report": self.report,
            "report_link": self.report_link,
            "alert": self.alert.as_dict(),
            "retrain": self.retrain.as_dict(),
            **_written_at(self.summary),
        }

    def to_json(self) -> bytes:
        return _json(self.as_dict())

    def written_to(self, uri: str) -> ComparedSummary:
        return replace(self, summary=uri)


DriftSummary = SkippedSummary | ComparedSummary


def _written_at(uri: str | None) -> dict[str, str]:
    return {} if uri is None else {"summary": uri}


def _json(document: dict[str, Any]) -> bytes:
    # `default=str`, as the job has always written it: a value outside JSON's types is written as its
    # text instead of failing the job after the comparison is done.
    return (json.dumps(document, indent=2, sort_keys=True, default=str) + "\n").encode()


def describe(summary: DriftSummary) -> str:
    """The job's console output: the verdict, each signal family, and where everything went."""
    window = summary.window
    if isinstance(summary, SkippedSummary):
        line = f"{window.model} {window.date}: {NO_TRAFFIC}"
    else:
        line = _describe_comparison(summary)
    alert = summary.alert
    line += f"\nalert: {'sent via ' + ', '.join(alert.channels or ()) if alert.sent else alert.reason}"
    if isinstance(summary, ComparedSummary):
        retrain = summary.retrain
        line += f"\nretrain: {retrain.outcome if retrain.submitted else retrain.reason}"
    line += f"\nsummary: {summary.summary}"
    return line


def _describe_comparison(summary: ComparedSummary) -> str:
    window, comparison = summary.window, summary.comparison
    line = (
        f"{window.model} v{comparison.model_version} {window.date}: "
        f"{'DATASET DRIFT' if comparison.dataset_drift else 'no dataset drift'} "
        f"(decided by: {', '.join(comparison.deciding_signals) or 'no signal'}; "
        f"{len(comparison.drifted_features)} of {len(comparison.features)} features drifted; "
        f"{comparison.rows_compared} of {window.rows_in_window} rows compared)"
    )
    for family, signal in comparison.signals.items():
        line += f"\n  {family}: " + (
            f"skipped ({signal['skipped']})"
            if "skipped" in signal
            else f"p {signal['p_value']:.3g} vs level {signal['level']:.3g}"
            + (" REJECTED" if signal["rejected"] else "")
            + (f" ({signal['deciding_column']})" if signal["deciding_column"] else "")
        )
    if comparison.reference_groups:
        line += "\nlearned distributions: " + "; ".join(_describe_group(group) for group in comparison.reference_groups)
    if comparison.note:
        line += f"\nnote: {comparison.note}"
    return line + f"\nreport: {summary.report}"


def _describe_group(group: GroupVerdict) -> str:
    """`production 2026-11-02 (412 images): no drift, share 0.06 (reported)`."""
    head = f"{group.name} ({group.training_rows} images): "
    if group.skipped:
        return head + f"not compared ({group.skipped})"
    verdict = "drift" if group.dataset_drift else "no drift"
    return head + f"{verdict}, share {group.drifted_share:.2f}" + (" (reported)" if group.reported else "")
