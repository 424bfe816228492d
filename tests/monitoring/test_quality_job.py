"""The quality job end to end against the session's tracking server: validation accuracy read from a
version the training pipeline's register step registered, quality.json in the reports store, the
run in `monitoring/<model>`, the alert over real HTTP, all through `mlops quality run`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from monitoring.quality_job import VALIDATION_ACCURACY_METRIC
from monitoring.quality_report import DEGRADED, NO_VALIDATION, QUALITY_FILE
from monitoring.quality_settings import QualityVariables
from monitoring.run_record import experiment_name
from monitoring.settings import DriftVariables
from monitoring.webhook_receiver import WebhookReceiver
from tests.monitoring.conftest import MODEL, RegisteredDigits
from tests.monitoring.quality_logs import answers, log_request, send_labels
from tests.services import MotoS3Server
from workloads.tracking.local import LocalTrackingServer
from workloads.tracking.registry import METRIC_TAG_PREFIX


def test_quality_run_reads_validation_accuracy_from_the_registry_and_alerts(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    stores: dict[str, Path],
    webhook: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli.main import app

    labels = tmp_path / "labels"
    monkeypatch.setenv(QualityVariables.LABELS_STORE, str(labels))
    client = MlflowClient()
    version = registered_digits.version
    tags = client.get_model_version(MODEL, version).tags
    validation = float(tags[f"{METRIC_TAG_PREFIX}{VALIDATION_ACCURACY_METRIC}"])
    assert validation > 0.2  # so that 50 wrong answers of 50 lie far below it
    today = datetime.now(tz=UTC)
    day = (today - timedelta(days=2)).date()
    predicted, truth = answers(correct=0, wrong=50)
    served = log_request(stores["predictions"], day, predicted, version)
    unregistered = log_request(stores["predictions"], day, predicted, "9999")
    send_labels(labels, served, truth, received=today - timedelta(hours=1))
    send_labels(labels, unregistered, truth, received=today - timedelta(hours=1))

    outcome = CliRunner().invoke(app, ["quality", "run", MODEL, "--day", day.isoformat()])

    assert outcome.exit_code == 0, outcome.output
    assert f"{day.isoformat()} v{version}: degraded" in outcome.output
    summary = json.loads((stores["reports"] / MODEL / f"date={day}" / QUALITY_FILE).read_text(encoding="utf-8"))
    rows = {row["model_version"]: row for row in summary["rows"]}
    assert rows[version]["validation_accuracy"] == pytest.approx(validation)
    assert rows[version]["verdict"] == DEGRADED and rows[version]["accuracy"] == 0.0
    assert rows["9999"]["verdict"] == NO_VALIDATION and rows["9999"]["validation_accuracy"] is None
    assert summary["status"] == DEGRADED and summary["matched"] == 100
    # Label-free beside measured: calibrated on the version's validation predictions from the registry.
    assert (
        0.0 < rows[version]["estimated_accuracy"] <= 1.0
        and "CBPE over 50 predictions" in rows[version]["estimate_note"]
    )
    assert rows["9999"]["estimated_accuracy"] is None and rows["9999"]["estimate_note"].startswith("no calibration")

    run = client.get_run(summary["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == experiment_name(MODEL)
    assert run.info.run_name == f"quality-{day}" and run.data.tags["quality.status"] == DEGRADED
    assert run.data.metrics[f"accuracy/v{version}/{day}"] == 0.0
    assert run.data.metrics[f"estimated_accuracy/v{version}/{day}"] == pytest.approx(
        rows[version]["estimated_accuracy"]
    )
    assert QUALITY_FILE in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}

    (text,) = webhook.texts()
    assert text.startswith(f"[quality] {MODEL} v{version} {day}: measured accuracy below validation accuracy")
    assert summary["mlflow_run_id"] in text  # the link: the run in the tracking UI
    assert summary["alert"]["sent"] is True and summary["alert"]["kind"] == "quality"


def test_a_degraded_day_alerts_on_the_drift_jobs_sns_topic_too(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    stores: dict[str, Path],
    webhook: WebhookReceiver,
    aws_environment: MotoS3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster sets MLOPS_DRIFT_SNS_TOPIC_ARN on the quality job as on the drift job
    (infra/quality_monitor.py): the quality alert reaches both channels."""
    from monitoring.quality_job import run_quality_job
    from monitoring.quality_settings import QualitySettings

    topic, queue = aws_environment.sns_inbox("model-alerts")
    labels = tmp_path / "labels"
    monkeypatch.setenv(QualityVariables.LABELS_STORE, str(labels))
    monkeypatch.setenv(DriftVariables.SNS_TOPIC_ARN, topic)
    today = datetime.now(tz=UTC)
    day = (today - timedelta(days=1)).date()
    predicted, truth = answers(correct=0, wrong=40)
    send_labels(labels, log_request(stores["predictions"], day, predicted, registered_digits.version), truth, today)

    summary = run_quality_job(MODEL, day.isoformat(), QualitySettings.from_environment()).summary

    assert summary.alert["sent"] is True and summary.alert["channels"] == ["webhook", "sns"], summary.alert
    (message,) = aws_environment.client("sqs").receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
    subject = json.loads(message["Body"])["Subject"]
    assert subject.startswith(f"[quality] {MODEL} v{registered_digits.version} {day}: measured accuracy below")
