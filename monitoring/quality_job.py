"""The daily quality job of one model: `python -m monitoring.quality_job MODEL [--day YYYY-MM-DD]`.

Behind `mlops quality run MODEL`, and in the cluster daily per model, an hour after its drift job, as
CronJob `quality-<model>` in the drift image (`infra/quality_monitor.py`). One run:

1. read the prediction log of the window — the `MLOPS_QUALITY_LOOKBACK_DAYS` prediction days ending
   with the job's day (default: yesterday, UTC) — and the labels received from its first day until
   now, resolved (the last label per image wins), and join them on (request_id, image_index)
   (`monitoring.quality_join`);
2. per (prediction day, model version): labelled count, accuracy with its Wilson interval, macro-F1
   (`monitoring.quality_metrics`), beside the version's validation accuracy from the registry, and a
   verdict (`monitoring.quality_report`): degraded, ok, too few labels, no validation accuracy; and,
   from every prediction of the row, labelled or not, the label-free estimate of its accuracy (CBPE,
   calibrated on the version's validation predictions: `monitoring.quality_estimate`), shown beside
   the measurement and never judged on;
3. write `quality.json` to `<reports>/<model>/date=<day>/` and log it, with the measurements as
   metrics, to the MLflow experiment `monitoring/<model>` (run `quality-<day>`);
4. any row degraded → one alert of kind `quality` (the drift job's channels), at most once per cooldown;
5. push the measurements to the Pushgateway, where one is configured (`monitoring.job_metrics`);
6. a degraded row of the production version → the retrain trigger (`monitoring.actions.retrain_once`,
   the drift job's, same cooldown): base + the new labelled images, or a request for labels.

Exit status: 0 when the job did its work (whatever the verdict), 1 when it could not (unreadable store,
tracking server errors, every alert channel failed), 2 for a configuration error.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from monitoring import alerts
from monitoring.actions import alert_once, report_link, retrain_once
from monitoring.day_drift import day_drift
from monitoring.entrypoint import ModelDayFlags, ModelDayJob
from monitoring.errors import QualityJobError
from monitoring.job import default_day
from monitoring.job_metrics import QUALITY_JOB, push_results, quality_registry
from monitoring.quality_estimate import CalibrationLookup, estimate_window, registry_calibration
from monitoring.quality_join import join, labels_table, prediction_days, read_predictions
from monitoring.quality_metrics import measure
from monitoring.quality_report import QUALITY_FILE, QualityRow, QualitySummary, judge, overall
from monitoring.quality_settings import QualitySettings
from monitoring.retrain import RetrainSubmitter
from monitoring.run_record import MonitoringRun, registry_client
from monitoring.store import Store
from monitoring.window import window_prefix

LOG = logging.getLogger("mlops.quality")
VALIDATION_ACCURACY_METRIC = "accuracy"
"""The evaluation metric the training pipeline registers a version with (`pipelines.steps.register_step`)."""
DRIFTED_DAY_CAUTION = (
    "the drift job flagged this day: the estimate assumes the validation calibration still holds and may be too high"
)
ValidationLookup = Callable[[str], float | None]
"""model version → its validation accuracy, None when the registry has none."""
DESCRIPTION = (
    "Daily quality job of one model: labels joined with the predictions of a window of days, "
    "accuracy and macro-F1 per day and model version vs validation accuracy, quality.json, alerts."
)


@dataclass
class QualityResult:
    summary: QualitySummary
    exit_code: int = 0
    errors: list[str] = field(default_factory=list)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QualityJobError(f"--day {text!r}: expected YYYY-MM-DD") from None


def registry_validation(client: Any, model: str) -> ValidationLookup:
    """The validation accuracy each version was registered with (its `metric.accuracy` tag)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    from workloads.tracking.registry import METRIC_TAG_PREFIX

    def lookup(version: str) -> float | None:
        if not version.isdigit():  # "unknown": a log without model_version
            return None
        try:
            tags = client.get_model_version(model, version).tags
        except MlflowException as error:
            if error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                return None  # served by a version no longer (or never) registered: said, not guessed
            raise
        value = tags.get(f"{METRIC_TAG_PREFIX}{VALIDATION_ACCURACY_METRIC}")
        return float(value) if value is not None else None

    return lookup


def measure_quality(
    model: str,
    day: date,
    now: datetime,
    settings: QualitySettings,
    validation: ValidationLookup,
    calibration: CalibrationLookup | None = None,
) -> QualitySummary:
    """Join, measure and judge the window ending with `day`, and estimate each row's accuracy without
    labels when `calibration` is given; reads the stores, writes nothing."""
    days = prediction_days(day, settings.lookback_days)
    predictions_store = Store(settings.predictions_store)
    try:
        predictions = read_predictions(predictions_store, model, days)
    except (OSError, ValueError) as error:
        raise QualityJobError(f"cannot read the prediction log {predictions_store.uri_of(model)}: {error}") from None
    from workloads.labels.store import LabelStore

    labels_store = LabelStore(settings.labels_store)
    # Labels keep arriving after the window's last day: read them up to the day the job runs.
    try:
        labels = labels_store.load_table(model, days[0], max(day, now.date()))
    except (OSError, ValueError) as error:
        raise QualityJobError(f"cannot read the labels store {labels_store.uri}: {error}") from None
    joined = join(predictions, labels_table(labels))
    known: dict[str, float | None] = {}
    rows = []
    for measured in measure(joined, settings.confidence):
        if measured.model_version not in known:
            known[measured.model_version] = validation(measured.model_version)
        rows.append(judge(measured, known[measured.model_version], settings))
    if calibration is not None:
        rows = _with_estimates(rows, predictions_store, model, days, calibration)
        rows = _doubt_drifted_days(rows, Store(settings.reports_store), model)
    status, reason = overall(rows, settings)
    return QualitySummary(
        model=model,
        date=day.isoformat(),
        generated_at=now.isoformat(),
        status=status,
        reason=reason,
        first_day=days[0].isoformat(),
        lookback_days=settings.lookback_days,
        min_labels=settings.min_labels,
        margin=settings.margin,
        confidence=settings.confidence,
        predictions_store=predictions_store.uri_of(model),
        labels_store=labels_store.uri,
        predictions=joined.predictions.num_rows,
        unkeyed_predictions=joined.unkeyed_predictions,
        labels=joined.labels,
        matched=joined.matched,
        unmatched=joined.unmatched,
        verdicts=dict(sorted(Counter(row.verdict for row in rows).items())),
        rows=tuple(rows),
    )


def _with_estimates(
    rows: list[QualityRow], store: Store, model: str, days: list[date], calibration: CalibrationLookup
) -> list[QualityRow]:
    groups = [(row.day, row.model_version) for row in rows]
    try:
        estimates = estimate_window(store, model, days, groups, calibration)
    except (OSError, ValueError) as error:
        raise QualityJobError(f"cannot read the prediction log {store.uri_of(model)}: {error}") from None
    return [
        replace(
            row,
            estimated_accuracy=estimates[group].accuracy,
            estimated_standard_error=estimates[group].standard_error,
            estimate_note=estimates[group].note,
        )
        for row, group in zip(rows, groups, strict=True)
    ]


def _doubt_drifted_days(rows: list[QualityRow], reports: Store, model: str) -> list[QualityRow]:
    """Mark the estimate of a day the drift job flagged: its calibration may not hold on shifted inputs
    (benchmarks/performance_estimate.py: strong image transforms are estimated tens of points too high)."""
    flagged: dict[str, bool] = {}
    marked = []
    for row in rows:
        if row.day not in flagged:
            try:
                flagged[row.day] = day_drift(reports, model, date.fromisoformat(row.day)).drifted
            except (OSError, ValueError):
                flagged[row.day] = False  # an unreadable summary leaves the estimate as it is
        if flagged[row.day] and row.estimated_accuracy is not None:
            row = replace(row, estimate_note=f"{row.estimate_note}; {DRIFTED_DAY_CAUTION}")
        marked.append(row)
    return marked


def quality_alert(summary: QualitySummary, link: str | None) -> alerts.Alert | None:
    """The alert for a degraded window; None otherwise (too few labels never alerts)."""
    degraded = summary.degraded
    if not degraded:
        return None
    versions = ", ".join(sorted({f"v{row.model_version}" for row in degraded}))
    return alerts.Alert(
        model=summary.model,
        kind=alerts.QUALITY,
        title=f"[quality] {summary.model} {versions} {summary.date}: measured accuracy below validation accuracy",
        text="\n".join(describe_row(row) for row in degraded),
        link=link,
    )


def alert_on(
    summary: QualitySummary,
    settings: QualitySettings,
    state: alerts.CooldownState,
    now: datetime,
    link: str | None,
    errors: list[str],
) -> dict[str, Any]:
    """Send the alert of a degraded window (the drift job's channels and cooldown), or say why not."""
    alert = quality_alert(summary, link)
    if alert is None:
        return {"sent": False, "kind": alerts.QUALITY, "reason": summary.reason}
    outcome, error = alert_once(settings, state, now, alert)
    if error:
        errors.append(error)
    return outcome.as_dict()


def retrain_on_degraded(
    summary: QualitySummary,
    settings: QualitySettings,
    state: alerts.CooldownState,
    now: datetime,
    client: Any,
    submitter: RetrainSubmitter | None,
    errors: list[str],
) -> dict[str, Any]:
    """A measured accuracy drop of the version in production triggers the retrain (drift's trigger, same
    cooldown, same rule: only on enough new labelled images, else it asks for labels)."""
    production = _production_version(client, summary.model)
    degraded = [row for row in summary.degraded if production is None or row.model_version == production]
    if not degraded:
        why = "no degraded row of the production version" if summary.degraded else summary.reason
        return {"submitted": False, "reason": why}
    outcome, error = retrain_once(
        summary.model, settings, state, now, submitter, summary.date, trigger="measured accuracy dropped"
    )
    if error:
        errors.append(error)
    return outcome.as_dict()


def _production_version(client: Any, model: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, "production").version)
    except MlflowException:
        return None


class QualityRun(MonitoringRun):
    """The job's run `quality-<day>` in `monitoring/<model>`, beside the drift job's runs."""

    def __init__(self, client: Any, model: str, day: str) -> None:
        super().__init__(client, model, day, job="quality")

    def finish_quality(self, summary: QualitySummary, failed: bool) -> None:
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(alerts.now_utc().timestamp() * 1000)
        metrics: dict[str, float] = {"predictions": summary.predictions, "labels": summary.labels}
        metrics.update(matched=summary.matched, unmatched=summary.unmatched)
        for row in summary.rows:
            metrics.update(_row_metrics(row))
        params = {"lookback_days": summary.lookback_days, "min_labels": summary.min_labels, "margin": summary.margin}
        self.client.log_batch(
            self.link.run_id,
            metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)) for key, value in {**params, "date": summary.date}.items()],
            tags=[RunTag("quality.status", summary.status)],
        )
        self.client.log_text(self.link.run_id, summary.to_json().decode(), QUALITY_FILE)
        self.client.set_terminated(self.link.run_id, status="FAILED" if failed else "FINISHED")


def _row_metrics(row: QualityRow) -> dict[str, float]:
    """`accuracy/v3/2026-11-19`, ...: one series per version, the day in the key (MLflow keeps one
    value per key and step, and the days of a window are recomputed every run)."""
    suffix = f"v{row.model_version}/{row.day}"
    values = {"labelled": row.labelled, "accuracy": row.accuracy, "interval_high": row.interval_high}
    values.update(macro_f1=row.macro_f1, estimated_accuracy=row.estimated_accuracy)
    return {f"{name}/{suffix}": float(value) for name, value in values.items() if value is not None}


def run_quality_job(
    model: str,
    day: str | None = None,
    settings: QualitySettings | None = None,
    *,
    now: datetime | None = None,
    client: Any = None,
    submitter: RetrainSubmitter | None = None,
) -> QualityResult:
    """One execution of the job. Raises QualityJobError when it cannot do its work."""
    settings = settings or QualitySettings.from_environment()
    now = now or alerts.now_utc()
    last = parse_day(day) if day else date.fromisoformat(default_day(now))
    client = registry_client(client, QualityJobError, "validation accuracy")
    summary = measure_quality(
        model, last, now, settings, registry_validation(client, model), registry_calibration(client, model)
    )
    reports = Store(settings.reports_store)
    key = f"{window_prefix(model, summary.date)}/{QUALITY_FILE}"
    run = QualityRun(client, model, summary.date)
    errors: list[str] = []
    state = alerts.CooldownState(reports, model)
    alert = alert_on(summary, settings, state, now, report_link(settings, key, reports, run.link), errors)
    retrain = retrain_on_degraded(summary, settings, state, now, client, submitter, errors)
    summary = replace(
        summary,
        alert=alert,
        retrain=retrain,
        mlflow_run_id=run.link.run_id,
        mlflow_run_url=run.link.url,
        summary=reports.uri_of(key),
    )
    reports.write(key, summary.to_json(), "application/json")
    run.finish_quality(summary, failed=bool(errors))
    push_results(settings.pushgateway_url, QUALITY_JOB, model, quality_registry(summary))
    return QualityResult(summary, 1 if errors else 0, errors)


def describe_row(row: QualityRow) -> str:
    measured = (
        f"accuracy {row.accuracy:.3f} [{row.interval_low:.3f}, {row.interval_high:.3f}], macro-F1 {row.macro_f1:.3f}, "
        if row.accuracy is not None and row.interval_low is not None and row.interval_high is not None
        else ""
    )
    validation = f"{row.validation_accuracy:.3f}" if row.validation_accuracy is not None else "none"
    estimated = (
        f"estimated accuracy {row.estimated_accuracy:.3f} ± {row.estimated_standard_error:.3f} (label-free, CBPE), "
        if row.estimated_accuracy is not None and row.estimated_standard_error is not None
        else ""
    )
    return (
        f"{row.day} v{row.model_version}: {row.verdict} — {measured}{estimated}{row.labelled} of {row.predictions} "
        f"predictions labelled, validation accuracy {validation}; {row.reason}"
    )


def describe(result: QualityResult) -> str:
    summary = result.summary
    lines = [
        f"{summary.model} {summary.first_day}..{summary.date}: {summary.status} ({summary.reason})",
        f"labels: {summary.labels} received, {summary.matched} matched, {summary.unmatched} unmatched "
        "(prediction not in the window: kept for a later run)",
        *(f"  {describe_row(row)}" for row in summary.rows),
    ]
    alert = summary.alert
    lines.append(f"alert: {'sent via ' + ', '.join(alert['channels']) if alert.get('sent') else alert.get('reason')}")
    retrain = summary.retrain
    if retrain:
        lines.append(f"retrain: {retrain.get('outcome') if retrain.get('submitted') else retrain.get('reason')}")
    lines.append(f"summary: {summary.summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    flags = ModelDayFlags("model", "--day", "last prediction day of the window, YYYY-MM-DD (default: yesterday, UTC)")
    command = ModelDayJob("python -m monitoring.quality_job", DESCRIPTION, QualitySettings, QualityJobError, flags)
    return command.main(argv, run_quality_job, describe)


if __name__ == "__main__":
    sys.exit(main())
