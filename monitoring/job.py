"""The daily drift job of one model: `python -m monitoring.job --model NAME [--date YYYY-MM-DD]`.

The same entrypoint runs in the cluster's CronJob, behind `mlops drift run MODEL` and in the tests:

1. read the model's prediction log for the day (default: yesterday, UTC — the last complete day);
   no rows → status `skipped`, a "skipped: no traffic" alert (its own kind), never "no drift";
2. take the majority model version of the window (a window that spans a rollout says so in the
   summary and compares only that version's rows) and download its reference tables from the
   registry; none attached → one clear error, exit 1;
3. compare a sample of the window with the reference in one Evidently report and decide family-wise
   (`monitoring.drift`): dataset drift when a signal family — image statistics, embedding, class mix,
   softmax (BBSD) or, without softmax columns, confidence — rejects at its corrected level; the summary
   names the families that decided (`deciding_signals`) with each family's p-value and level;
4. write `report.html` and `summary.json` to `<reports>/<model>/date=YYYY-MM-DD/` and log both, with
   the scores as metrics, to the MLflow experiment `monitoring/<model>`;
5. dataset drift → alert (webhook and/or SNS, with the report's links), at most once per cooldown,
   and, if enabled, submit the model's training pipeline, at most once per cooldown;
6. push the day's results to the Pushgateway, where one is configured (`monitoring.job_metrics`).

This module runs those steps in order; each lives in its own module: the reference
(`monitoring.reference_loader`), the comparison (`monitoring.comparison`), the MLflow run
(`monitoring.run_record`), the alert and retrain policy (`monitoring.actions`) and the typed
summary with its console text (`monitoring.summary`).

Exit status: 0 when the job did its work (drift or not, or skipped), 1 when it could not (missing
reference, unreadable store, every alert channel failed, the retrain submission failed), 2 for a
configuration error. Configuration: environment variables, listed by `--help` (monitoring.settings).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from monitoring import alerts
from monitoring.actions import (
    NO_DRIFT_REASON,
    alert_once,
    drift_alert,
    report_link,
    retrain_once,
    skipped_alert,
)
from monitoring.comparison import compare
from monitoring.drift import DriftComputation, class_names_for
from monitoring.entrypoint import ModelDayFlags, ModelDayJob
from monitoring.errors import DriftJobError
from monitoring.job_metrics import DRIFT_JOB, drift_registry, push_results
from monitoring.reference_loader import load_reference
from monitoring.retrain import RetrainSubmitter
from monitoring.run_record import MonitoringRun, comparison_metrics, comparison_params, registry_client
from monitoring.settings import DriftSettings
from monitoring.store import Store
from monitoring.summary import (
    SUMMARY_FILE,
    AlertOutcome,
    ComparedSummary,
    DriftSummary,
    RetrainOutcome,
    SkippedSummary,
    WindowFacts,
    describe,
)
from monitoring.window import Window, load_window, window_prefix

REPORT_FILE = "report.html"


@dataclass(frozen=True)
class JobResult:
    """What one execution did: its summary, and what makes it exit 1 although it did its work."""

    summary: DriftSummary
    errors: tuple[str, ...] = ()
    """Why the job failed although it did its work (an alert not delivered, a retrain not submitted)."""

    @property
    def status(self) -> str:
        """`drift`, `no_drift` or `skipped`."""
        return self.summary.status

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0


@dataclass(frozen=True)
class _DayContext:
    """What the job knows of its day before it either skips or compares."""

    model: str
    day: str
    settings: DriftSettings
    now: datetime
    client: Any
    reports: Store
    state: alerts.CooldownState
    facts: WindowFacts

    def key(self, name: str) -> str:
        """Where `name` goes in the reports store: `<model>/date=YYYY-MM-DD/<name>`."""
        return f"{window_prefix(self.model, self.day)}/{name}"

    def write_summary(self, summary: DriftSummary) -> DriftSummary:
        """summary.json to the reports store; the summary returned also holds where it went (the
        file cannot: it is written first)."""
        return summary.written_to(self.reports.write(self.key(SUMMARY_FILE), summary.to_json(), "application/json"))


def default_day(now: datetime) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=1)).isoformat()


def _parse_day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise DriftJobError(f"--date {text!r}: expected YYYY-MM-DD") from None


def run_job(
    model: str,
    day: str | None = None,
    settings: DriftSettings | None = None,
    *,
    submitter: RetrainSubmitter | None = None,
    now: datetime | None = None,
    client: Any = None,
) -> JobResult:
    """One execution of the job. Raises DriftJobError when it cannot do its work."""
    settings = settings or DriftSettings.from_environment()
    now = now or alerts.now_utc()
    day = _parse_day(day) if day else default_day(now)
    client = registry_client(client, DriftJobError, "reference tables")
    predictions = Store(settings.predictions_store)
    reports = Store(settings.reports_store)
    folder = window_prefix(model, day)
    class_names = class_names_for(model)

    try:
        window = load_window(predictions, model, day)
    except (OSError, ValueError) as error:
        raise DriftJobError(f"cannot read the prediction log {predictions.uri_of(folder)}: {error}") from None
    facts = WindowFacts(
        model=model,
        date=day,
        generated_at=now.isoformat(),
        predictions=predictions.uri_of(folder),
        files=len(window.files),
        rows_in_window=window.rows,
        model_versions=window.versions,
    )
    context = _DayContext(model, day, settings, now, client, reports, alerts.CooldownState(reports, model), facts)
    result = _skip(context) if window.empty else _compare(context, window, class_names, submitter)
    push_results(settings.pushgateway_url, DRIFT_JOB, model, drift_registry(result.summary))
    return result


def _skip(context: _DayContext) -> JobResult:
    """No traffic: a "skipped" alert of its own kind and a summary that says so, never "no drift"."""
    run = MonitoringRun(context.client, context.model, context.day)
    link = report_link(context.settings, context.key(SUMMARY_FILE), context.reports, run.link)
    alert = skipped_alert(context.model, context.day, context.facts.predictions, link)
    outcome, failure = alert_once(context.settings, context.state, context.now, alert)
    errors = _errors(failure)
    summary = context.write_summary(SkippedSummary(window=context.facts, run=run.link, alert=outcome))
    run.finish(summary, {"rows_in_window": 0}, {"date": context.day}, failed=bool(errors))
    return JobResult(summary, errors)


def _compare(
    context: _DayContext, window: Window, class_names: Sequence[str] | None, submitter: RetrainSubmitter | None
) -> JobResult:
    """The majority version's rows against its reference; then the report, the alert and the retrain."""
    version = window.majority_version
    assert version is not None  # the window is not empty
    # Before the run exists: a version without a reference leaves no run and no report behind.
    reference = load_reference(context.model, version, context.client)
    compared = compare(window, version, reference, context.settings, class_names)
    computation, comparison = compared.computation, compared.comparison

    run = MonitoringRun(context.client, context.model, context.day)
    report = _write_report(context, computation, run)
    link = report_link(context.settings, context.key(REPORT_FILE), context.reports, run.link)
    if computation.dataset_drift:
        alert = drift_alert(
            context.model, version, context.day, computation, comparison.rows_compared, window.rows, link
        )
        alerted, alert_failure = alert_once(context.settings, context.state, context.now, alert)
        retrained, retrain_failure = retrain_once(
            context.model, context.settings, context.state, context.now, submitter, context.day
        )
        errors = _errors(alert_failure, retrain_failure)
    else:
        alerted = AlertOutcome(sent=False, reason=NO_DRIFT_REASON)
        retrained = RetrainOutcome(submitted=False, reason=NO_DRIFT_REASON)
        errors = ()

    summary = context.write_summary(
        ComparedSummary(
            window=context.facts,
            comparison=comparison,
            run=run.link,
            report=report,
            report_link=link,
            alert=alerted,
            retrain=retrained,
        )
    )
    run.finish(
        summary,
        comparison_metrics(computation, window.rows, comparison.rows_compared),
        comparison_params(computation, context.day, version, context.settings),
        failed=bool(errors),
    )
    return JobResult(summary, errors)


def _write_report(context: _DayContext, computation: DriftComputation, run: MonitoringRun) -> str:
    """Evidently's HTML report, to the reports store and to the run; returns its URI in the store."""
    with tempfile.TemporaryDirectory(prefix="mlops-drift-") as scratch:
        html = Path(scratch) / REPORT_FILE
        computation.snapshot.save_html(str(html))
        uri = context.reports.write(context.key(REPORT_FILE), html.read_bytes(), "text/html")
        run.log_file(html)
    return uri


def _errors(*failures: str | None) -> tuple[str, ...]:
    return tuple(failure for failure in failures if failure is not None)


DESCRIPTION = (
    "Daily drift job of one model: prediction log of a day vs the reference of the version "
    "that served it (Evidently), report + summary, alerts, optional retrain trigger."
)


def main(argv: Sequence[str] | None = None) -> int:
    flags = ModelDayFlags("--model", "--date", "day of the window, YYYY-MM-DD (default: yesterday, UTC)")
    command = ModelDayJob("python -m monitoring.job", DESCRIPTION, DriftSettings, DriftJobError, flags)
    return command.main(argv, run_job, lambda result: describe(result.summary))


if __name__ == "__main__":
    sys.exit(main())
