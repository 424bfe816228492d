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
   and, if enabled, submit the model's training pipeline, at most once per cooldown.

Exit status: 0 when the job did its work (drift or not, or skipped), 1 when it could not (missing
reference, unreadable store, every alert channel failed, the retrain submission failed), 2 for a
configuration error. Configuration: environment variables, listed by `--help` (monitoring.settings).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from monitoring import alerts
from monitoring.drift import (
    DriftComputation,
    DriftThresholds,
    build_reference,
    class_names_for,
    compute_drift,
    summarise_features,
    summarise_signals,
)
from monitoring.retrain import RetrainSubmitter, submitter_for
from monitoring.settings import DriftSettings, MonitoringSettings, SettingsError, variables_help
from monitoring.store import Store
from monitoring.window import load_window, sample_window, window_prefix

LOG = logging.getLogger("mlops.drift")
EXPERIMENT_PREFIX = "monitoring/"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"


class DriftJobError(RuntimeError):
    """The job cannot do its work; the message says why and what to do."""


@dataclass
class JobResult:
    status: str
    """`drift`, `no_drift` or `skipped`."""
    summary: dict[str, Any]
    exit_code: int = 0
    errors: list[str] = field(default_factory=list)


def experiment_name(model: str) -> str:
    return f"{EXPERIMENT_PREFIX}{model}"


def default_day(now: datetime) -> str:
    return (now.astimezone(UTC).date() - timedelta(days=1)).isoformat()


def _parse_day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise DriftJobError(f"--date {text!r}: expected YYYY-MM-DD") from None


def _load_reference(model: str, version: str, client: Any) -> tuple[Any, Any, dict[str, Any]]:
    from mlflow.exceptions import MlflowException

    from workloads import features
    from workloads.reference import (
        TRAINING_FEATURES_TAG,
        VALIDATION_PREDICTIONS_TAG,
        MissingReferenceError,
        download_reference,
    )

    try:
        training, provenance = download_reference(model, version, TRAINING_FEATURES_TAG, client=client)
    except MissingReferenceError as error:
        raise DriftJobError(
            f"no reference for {model} v{version}, the version that served the window: {error}. "
            "Register versions with the training pipeline (it attaches the reference table)."
        ) from None
    except MlflowException as error:
        raise DriftJobError(
            f"no reference for {model} v{version}, the version that served the window: the registry "
            f"says {error.message}"
        ) from None
    written_with = str(provenance.get("features_version", features.FEATURES_VERSION))
    if written_with != features.FEATURES_VERSION:
        raise DriftJobError(
            f"the reference of {model} v{version} was written with features version {written_with}, this job "
            f"computes version {features.FEATURES_VERSION}: retrain the model to get a comparable reference"
        )
    try:
        validation, _ = download_reference(model, version, VALIDATION_PREDICTIONS_TAG, client=client)
    except MissingReferenceError:
        validation = None
    return training, validation, provenance


class _MlflowRun:
    """The job's run in `monitoring/<model>` (one per job execution; `job` names it, the quality job's too)."""

    def __init__(self, client: Any, model: str, day: str, job: str = "drift") -> None:
        self.client = client
        name = experiment_name(model)
        experiment = client.get_experiment_by_name(name)
        self.experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run = client.create_run(self.experiment_id, run_name=f"{job}-{day}", tags={"model": model, "date": day})
        self.run_id = run.info.run_id
        base = os.environ.get("MLFLOW_TRACKING_URI", "").rstrip("/")
        self.url = f"{base}/#/experiments/{self.experiment_id}/runs/{self.run_id}" if base.startswith("http") else None

    def log_file(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, summary: dict[str, Any], metrics: dict[str, float], params: dict[str, Any], failed: bool) -> None:
        from mlflow.entities import Metric, Param, RunTag

        stamp = int(datetime.now(tz=UTC).timestamp() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
            params=[Param(key, str(value)[:6000]) for key, value in params.items()],
            tags=[
                RunTag("drift.status", summary["status"]),
                RunTag("drift.dataset_drift", str(summary.get("dataset_drift", False)).lower()),
                RunTag("model_version", str(summary.get("model_version") or "none")),
            ],
        )
        self.client.log_dict(self.run_id, summary, SUMMARY_FILE)
        self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")


def _link(settings: MonitoringSettings, key: str, reports: Store, run: _MlflowRun | None) -> str:
    if settings.reports_url:
        return f"{settings.reports_url.rstrip('/')}/{key}"
    if run is not None and run.url:
        return run.url
    return reports.uri_of(key)


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
    from mlflow.tracking import MlflowClient

    settings = settings or DriftSettings.from_environment()
    now = now or alerts.now_utc()
    day = _parse_day(day) if day else default_day(now)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        raise DriftJobError("MLFLOW_TRACKING_URI is not set: the job reads reference tables from the registry")
    client = client or MlflowClient()
    predictions = Store(settings.predictions_store)
    reports = Store(settings.reports_store)
    folder = f"{window_prefix(model, day)}"
    class_names = class_names_for(model)

    try:
        window = load_window(predictions, model, day)
    except (OSError, ValueError) as error:
        raise DriftJobError(f"cannot read the prediction log {predictions.uri_of(folder)}: {error}") from None
    summary: dict[str, Any] = {
        "model": model,
        "date": day,
        "generated_at": now.isoformat(),
        "predictions": predictions.uri_of(folder),
        "files": len(window.files),
        "rows_in_window": window.rows,
        "model_versions": window.versions,
    }
    state = alerts.CooldownState(reports, model)
    errors: list[str] = []

    if window.empty:
        summary.update(status="skipped", reason="skipped: no traffic", dataset_drift=None, rows_compared=0)
        summary_key = f"{folder}/{SUMMARY_FILE}"
        run = _MlflowRun(client, model, day)
        summary["mlflow_run_id"], summary["mlflow_run_url"] = run.run_id, run.url
        summary["alert"] = _maybe_alert(
            settings,
            state,
            now,
            alerts.Alert(
                model=model,
                kind=alerts.SKIPPED,
                title=f"[drift] {model} {day}: skipped: no traffic",
                text=f"No predictions were logged for {model} on {day} under {summary['predictions']}; "
                "drift was not evaluated.",
                link=_link(settings, summary_key, reports, run),
            ),
            errors,
        )
        summary["summary"] = reports.write(summary_key, _json(summary), "application/json")
        run.finish(summary, {"rows_in_window": 0}, {"date": day}, failed=bool(errors))
        return JobResult("skipped", summary, 1 if errors else 0, errors)

    version = window.majority_version
    assert version is not None
    if len(window.versions) > 1:
        summary["note"] = (
            f"the window mixes model versions {window.versions}: compared the majority version v{version} "
            f"({window.versions[version]} of {window.rows} rows) with its reference"
        )
    training, validation, provenance = _load_reference(model, version, client)
    reference, source = build_reference(training, validation, class_names, settings.sample_size, settings.seed)
    current = sample_window(window, version, settings.sample_size, settings.seed, class_names)
    thresholds = DriftThresholds(
        numerical=settings.numerical_threshold,
        categorical=settings.categorical_threshold,
        p_value=settings.p_value,
        embedding=settings.embedding_threshold,
    )
    computation = compute_drift(current, reference, thresholds)
    status = "drift" if computation.dataset_drift else "no_drift"
    summary.update(
        status=status,
        dataset_drift=computation.dataset_drift,
        deciding_signals=computation.deciding_signals,
        significance_level=computation.significance_level,
        signals=summarise_signals(computation),
        drifted_share=computation.drifted_share,
        drifted_features=computation.drifted_features,
        model_version=version,
        rows_compared=len(current),
        rows_of_version=window.versions[version],
        reference_rows={"training": len(training), "validation": len(validation) if validation is not None else 0},
        reference_source=source,
        reference_dataset=f"{provenance.get('dataset', '?')} {provenance.get('dataset_version', '?')}",
        sample_size=settings.sample_size,
        features=summarise_features(computation),
    )

    run = _MlflowRun(client, model, day)
    summary["mlflow_run_id"], summary["mlflow_run_url"] = run.run_id, run.url
    report_key, summary_key = f"{folder}/{REPORT_FILE}", f"{folder}/{SUMMARY_FILE}"
    with tempfile.TemporaryDirectory(prefix="mlops-drift-") as scratch:
        html = Path(scratch) / REPORT_FILE
        computation.snapshot.save_html(str(html))
        summary["report"] = reports.write(report_key, html.read_bytes(), "text/html")
        run.log_file(html)
    link = _link(settings, report_key, reports, run)
    summary["report_link"] = link

    if computation.dataset_drift:
        drifted = ", ".join(computation.drifted_features)
        summary["alert"] = _maybe_alert(
            settings,
            state,
            now,
            alerts.Alert(
                model=model,
                kind=alerts.DRIFT,
                title=f"[drift] {model} v{version} {day}: dataset drift detected",
                text=(
                    f"decided by {describe_decision(computation)}. Drifted features: {drifted}. "
                    f"{len(current)} of {window.rows} rows compared with the reference of v{version}."
                ),
                link=link,
            ),
            errors,
        )
        summary["retrain"] = _maybe_retrain(model, settings, state, now, submitter, errors)
    else:
        summary["alert"] = {"sent": False, "reason": "no dataset drift"}
        summary["retrain"] = {"submitted": False, "reason": "no dataset drift"}

    summary["summary"] = reports.write(summary_key, _json(summary), "application/json")
    metrics = {
        "drifted_share": computation.drifted_share,
        "dataset_drift": float(computation.dataset_drift),
        **{f"p_value.{signal.family}": signal.p_value for signal in computation.signals},
        "rows_in_window": float(window.rows),
        "rows_compared": float(len(current)),
        **{f"score.{feature.name}": feature.score for feature in computation.features},
    }
    params = {
        "date": day,
        "model_version": version,
        "sample_size": settings.sample_size,
        "significance_level": settings.p_value,
        "deciding_signals": ",".join(computation.deciding_signals) or "none",
        "methods": json.dumps({feature.name: feature.method for feature in computation.features}),
    }
    run.finish(summary, metrics, params, failed=bool(errors))
    return JobResult(status, summary, 1 if errors else 0, errors)


def _maybe_alert(
    settings: MonitoringSettings, state: alerts.CooldownState, now: datetime, alert: alerts.Alert, errors: list[str]
) -> dict[str, Any]:
    until = state.active_until(alert.kind, settings.cooldown_hours, now)
    if until is not None:
        LOG.info("%s alert for %s suppressed: cooldown until %s", alert.kind, alert.model, until.isoformat())
        return {"sent": False, "kind": alert.kind, "reason": "cooldown", "suppressed_until": until.isoformat()}
    if not settings.webhook_url and not settings.sns_topic_arn:
        LOG.warning("%s for %s: no alert channel configured (MLOPS_DRIFT_WEBHOOK_URL / SNS)", alert.title, alert.model)
        return {"sent": False, "kind": alert.kind, "reason": "no channel configured"}
    try:
        channels = alerts.send(alert, settings.webhook_url, settings.sns_topic_arn)
    except alerts.AlertError as error:
        errors.append(f"alert not delivered: {error}")
        return {"sent": False, "kind": alert.kind, "reason": f"delivery failed: {error}"}
    state.record(alert.kind, now, title=alert.title)
    return {"sent": True, "kind": alert.kind, "channels": channels, "text": alert.message()}


def _maybe_retrain(
    model: str,
    settings: DriftSettings,
    state: alerts.CooldownState,
    now: datetime,
    submitter: RetrainSubmitter | None,
    errors: list[str],
) -> dict[str, Any]:
    submitter = submitter or submitter_for(settings.retrain, settings.kfp_host)
    if submitter is None:
        return {"submitted": False, "reason": "retrain trigger off (MLOPS_DRIFT_RETRAIN)"}
    until = state.active_until(alerts.RETRAIN, settings.cooldown_hours, now)
    if until is not None:
        return {"submitted": False, "reason": "cooldown", "suppressed_until": until.isoformat()}
    # Recorded before the run: a local run takes minutes, and a crash mid-run must not resubmit hourly.
    state.record(alerts.RETRAIN, now, arguments=dict(settings.retrain_arguments))
    try:
        outcome = submitter(model, settings.retrain_arguments)
    except Exception as error:  # any submission failure is reported, with its message, as the job's failure
        errors.append(f"retrain submission failed: {error}")
        return {"submitted": False, "reason": f"submission failed: {error}"}
    LOG.info("retrain of %s submitted: %s", model, outcome)
    return {"submitted": True, "outcome": outcome}


def describe_decision(computation: DriftComputation) -> str:
    """`softmax (p 1.2e-05 < 0.0125, softmax_3), class (...)`: the families that rejected."""
    return ", ".join(
        f"{signal.family} (p {signal.p_value:.3g} < {signal.level:.3g}"
        + (f", {signal.deciding_column})" if signal.deciding_column else ")")
        for signal in computation.signals
        if signal.rejected
    )


def _json(summary: dict[str, Any]) -> bytes:
    return (json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n").encode()


def describe(result: JobResult) -> str:
    summary = result.summary
    if result.status == "skipped":
        line = f"{summary['model']} {summary['date']}: skipped: no traffic"
    else:
        line = (
            f"{summary['model']} v{summary['model_version']} {summary['date']}: "
            f"{'DATASET DRIFT' if summary['dataset_drift'] else 'no dataset drift'} "
            f"(decided by: {', '.join(summary['deciding_signals']) or 'no signal'}; "
            f"{len(summary['drifted_features'])} of {len(summary['features'])} features drifted; "
            f"{summary['rows_compared']} of {summary['rows_in_window']} rows compared)"
        )
        for family, signal in summary["signals"].items():
            line += f"\n  {family}: " + (
                f"skipped ({signal['skipped']})"
                if "skipped" in signal
                else f"p {signal['p_value']:.3g} vs level {signal['level']:.3g}"
                + (" REJECTED" if signal["rejected"] else "")
                + (f" ({signal['deciding_column']})" if signal["deciding_column"] else "")
            )
        if summary.get("note"):
            line += f"\nnote: {summary['note']}"
        line += f"\nreport: {summary['report']}"
    alert = summary.get("alert", {})
    line += f"\nalert: {'sent via ' + ', '.join(alert['channels']) if alert.get('sent') else alert.get('reason')}"
    if "retrain" in summary:
        retrain = summary["retrain"]
        line += f"\nretrain: {retrain.get('outcome') if retrain.get('submitted') else retrain.get('reason')}"
    line += f"\nsummary: {summary['summary']}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.job",
        description="Daily drift job of one model: prediction log of a day vs the reference of the version "
        "that served it (Evidently), report + summary, alerts, optional retrain trigger.",
        epilog="environment variables:\n" + variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="catalogue / registered model name")
    parser.add_argument("--date", default=None, help="day of the window, YYYY-MM-DD (default: yesterday, UTC)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = DriftSettings.from_environment()
        if arguments.date:
            _parse_day(arguments.date)
    except (SettingsError, DriftJobError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from mlflow.exceptions import MlflowException

    try:
        result = run_job(arguments.model, arguments.date, settings)
    except DriftJobError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except MlflowException as error:
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        print(f"error: the tracking server at {uri} refused or failed a request: {error.message}", file=sys.stderr)
        return 1
    print(describe(result))
    for message in result.errors:
        print(f"error: {message}", file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
