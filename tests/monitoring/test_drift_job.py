"""The drift job end to end on a local stack: real tracking server and registry, prediction logs in
the serving layout, real Evidently reports, alerts over real HTTP, a real kfp.local retrain run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from cli.local_traffic import shift_images as shifted
from monitoring.drift import IMAGE_STATISTICS
from monitoring.job import REPORT_FILE, run_job
from monitoring.retrain import LocalPipelineSubmitter
from monitoring.run_record import experiment_name
from monitoring.settings import DriftSettings
from monitoring.summary import SUMMARY_FILE, ComparedSummary
from monitoring.webhook_receiver import WebhookReceiver
from pipelines.contract import REPOSITORY_ROOT
from tests.monitoring.conftest import MODEL, RegisteredDigits, write_prediction_log
from tests.production_traffic import import_answers, served_request
from workloads.tracking.local import LocalTrackingServer

NOW = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DriftStage:
    """What every test here works with: the registered digits, this test's stores and its webhook
    receiver (the job's variables point at them, and at the session's tracking server)."""

    registered: RegisteredDigits
    stores: dict[str, Path]
    webhook: WebhookReceiver

    def log(self, day: str, images: np.ndarray, versions: list[str] | str | None = None) -> int:
        """Log `images` for `day` as served by `versions` (default: the registered version, every row)."""
        served = versions or self.registered.version
        return write_prediction_log(self.stores["predictions"], day, images, self.registered.weights, served)

    def summary(self, day: str) -> dict:
        return json.loads((self.day_folder(day) / SUMMARY_FILE).read_text(encoding="utf-8"))

    def day_folder(self, day: str) -> Path:
        return self.stores["reports"] / MODEL / f"date={day}"


@pytest.fixture
def stage(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    stores: dict[str, Path],
    webhook: WebhookReceiver,
) -> DriftStage:
    return DriftStage(registered_digits, stores, webhook)


def test_drifted_window_writes_report_and_summary_logs_to_mlflow_and_alerts(stage: DriftStage) -> None:
    day = "2026-11-19"
    rows = stage.log(day, shifted(stage.registered.images))

    result = run_job(MODEL, day, now=NOW)

    assert result.status == "drift" and result.exit_code == 0, result.summary
    summary = stage.summary(day)
    assert summary["dataset_drift"] is True
    assert summary["model_version"] == stage.registered.version
    assert summary["rows_compared"] == rows == summary["rows_in_window"]
    assert summary["deciding_signals"] and IMAGE_STATISTICS in summary["deciding_signals"]
    decided = summary["signals"][IMAGE_STATISTICS]
    assert decided["rejected"] is True and decided["p_value"] < decided["level"]
    # the log of this test has no softmax columns: the family is skipped, said, and the confidence decides
    assert "softmax columns" in summary["signals"]["softmax"]["skipped"]
    assert "p_value" in summary["signals"]["confidence"]
    assert {"brightness_mean", "prediction", "confidence", "embedding"} <= set(summary["features"])
    assert summary["features"]["brightness_mean"]["drifted"] is True
    assert summary["features"]["embedding"]["method"] == "domain classifier ROC AUC"
    assert "validation predictions" in summary["reference_source"]
    report = stage.day_folder(day) / REPORT_FILE
    assert report.stat().st_size > 10_000 and "brightness_mean" in report.read_text(encoding="utf-8")

    client = MlflowClient()
    run = client.get_run(summary["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == experiment_name(MODEL)
    assert run.data.tags["drift.status"] == "drift"
    assert run.data.metrics["drifted_share"] == pytest.approx(summary["drifted_share"])
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} >= {REPORT_FILE, SUMMARY_FILE}

    (text,) = stage.webhook.texts()
    assert f"[drift] {MODEL} v{stage.registered.version} {day}: dataset drift detected" in text
    assert summary["mlflow_run_id"] in text  # the link to the report in the tracking UI
    assert f"decided by {IMAGE_STATISTICS} (p " in text
    assert summary["alert"]["sent"] is True and summary["alert"]["channels"] == ["webhook"]


def test_undrifted_window_sends_no_alert_and_says_which_version_it_compared(stage: DriftStage) -> None:
    day = "2026-11-18"
    images = stage.registered.images
    # A rollout in the middle of the day: most rows from the registered version, some from another.
    versions = [stage.registered.version] * (len(images) - 40) + [stage.registered.version_without_reference] * 40
    stage.log(day, images, versions)

    result = run_job(MODEL, day, now=NOW)

    assert result.status == "no_drift" and result.exit_code == 0, result.summary
    summary = stage.summary(day)
    assert summary["dataset_drift"] is False
    assert summary["model_version"] == stage.registered.version
    assert summary["rows_compared"] == len(images) - 40
    assert "mixes model versions" in summary["note"]
    assert summary["alert"] == {"sent": False, "reason": "no dataset drift"}
    assert summary["deciding_signals"] == []
    assert stage.webhook.messages == []


def test_empty_window_is_a_skipped_alert_not_no_drift(stage: DriftStage) -> None:
    from cli.main import app

    day = "2026-11-17"
    outcome = CliRunner().invoke(app, ["drift", "run", MODEL, "--date", day])

    assert outcome.exit_code == 0, outcome.output
    assert "skipped: no traffic" in outcome.output
    summary = stage.summary(day)
    assert summary["status"] == "skipped" and summary["dataset_drift"] is None
    (text,) = stage.webhook.texts()
    assert f"[drift] {MODEL} {day}: skipped: no traffic" in text
    assert "no drift" not in text.lower()
    assert MlflowClient().get_run(summary["mlflow_run_id"]).data.tags["drift.status"] == "skipped"


def test_missing_reference_exits_non_zero_with_one_clear_message(stage: DriftStage) -> None:
    day = "2026-11-16"
    stage.log(day, stage.registered.images[:50], stage.registered.version_without_reference)

    process = subprocess.run(
        [sys.executable, "-m", "monitoring.job", "--model", MODEL, "--date", day],
        cwd=REPOSITORY_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert process.returncode == 1, process.stdout + process.stderr
    version = stage.registered.version_without_reference
    assert f"error: no reference for {MODEL} v{version}, the version that served the window" in process.stderr
    assert "Traceback" not in process.stderr
    assert stage.webhook.messages == []
    assert not stage.day_folder(day).exists()


def test_cooldown_deduplicates_alerts_per_model(stage: DriftStage) -> None:
    images = shifted(stage.registered.images[:150], brightness=90, noise=0.0)
    for day in ("2026-11-14", "2026-11-15"):
        stage.log(day, images)
    settings = DriftSettings.from_environment({**os.environ, "MLOPS_DRIFT_COOLDOWN_HOURS": "24"})

    first = run_job(MODEL, "2026-11-14", settings, now=NOW)
    second = run_job(MODEL, "2026-11-15", settings, now=NOW + timedelta(hours=23))
    third = run_job(MODEL, "2026-11-15", settings, now=NOW + timedelta(hours=25))

    assert [first.status, second.status, third.status] == ["drift"] * 3
    assert first.summary.alert.sent is True
    assert second.summary.alert.reason == "cooldown"
    assert second.summary.alert.suppressed_until == (NOW + timedelta(hours=24)).isoformat()
    assert third.summary.alert.sent is True
    assert len(stage.webhook.messages) == 2
    state = json.loads((stage.stores["reports"] / MODEL / "alert-state.json").read_text(encoding="utf-8"))
    assert state["drift"]["at"] == (NOW + timedelta(hours=25)).isoformat()


def _retrain_settings(dataset_store: Path, labels: Path, **variables: str) -> DriftSettings:
    arguments = {"epochs": 1, "quality_threshold": 0.0, "regression_margin": 1.0}
    return DriftSettings.from_environment(
        {
            **os.environ,
            "MLOPS_DRIFT_RETRAIN": "local",
            "MLOPS_DRIFT_RETRAIN_ARGUMENTS": json.dumps(arguments),
            "MLOPS_DATASET_STORE": str(dataset_store),
            "MLOPS_LABELS_STORE": str(labels),
            "MLOPS_RETRAIN_MIN_NEW_LABELS": "100",
            **variables,
        }
    )


def _serve_drifted_day(registered_digits: RegisteredDigits, predictions: Path, day: str) -> dict[tuple[str, int], str]:
    """150 brighter images served on `day` through the real log writer; their true labels by (request, index)."""
    from workloads.datasets.builders import build

    data = build("digits")
    images = shifted(data.images[:150], brightness=90, noise=0.0)
    truth: dict[tuple[str, int], str] = {}
    for start in range(0, 150, 15):
        served_day = datetime.fromisoformat(day).date()
        request = served_request(predictions, served_day, images[start : start + 15], registered_digits.version)
        truth.update({(request, index): str(data.labels[start + index]) for index in range(15)})
    return truth


@dataclass(frozen=True)
class RetrainCase:
    day: str
    now: datetime
    truth: dict[tuple[str, int], str]
    datasets: Path
    settings: DriftSettings
    submitter: LocalPipelineSubmitter
    versions_before: set[str]
    """The registry's digits versions before the test's jobs ran."""


def _registered_versions() -> set[str]:
    return {v.version for v in MlflowClient().search_model_versions(f"name = '{MODEL}'")}


@pytest.fixture
def retrain_case(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    stores: dict[str, Path],
    tmp_path: Path,
) -> RetrainCase:
    """Yesterday's drifted day served; a private copy of the dataset store; the trigger on, 100 labels needed."""
    now = datetime.now(tz=UTC)  # labels are stamped when they are received: the job runs after them
    day = (now - timedelta(days=1)).date().isoformat()
    truth = _serve_drifted_day(registered_digits, stores["predictions"], day)
    datasets = tmp_path / "datasets"
    shutil.copytree(registered_digits.dataset_store, datasets)
    settings = _retrain_settings(datasets, tmp_path / "labels")
    submitter = LocalPipelineSubmitter(pipeline_root=tmp_path / "pipes")
    return RetrainCase(day, now, truth, datasets, settings, submitter, _registered_versions())


def test_drift_without_new_labels_asks_for_labels_instead_of_retraining_on_the_same_data(
    retrain_case: RetrainCase, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    case = retrain_case
    day, now, truth, settings, submitter = case.day, case.now, case.truth, case.settings, case.submitter

    first = run_job(MODEL, day, settings, submitter=submitter, now=now)

    assert isinstance(first.summary, ComparedSummary) and first.summary.dataset_drift
    retrain = first.summary.retrain.as_dict()
    assert retrain["submitted"] is False and retrain["new_labels"] == 0
    assert retrain["reason"].startswith("needs labels: 0 new labelled images of 100; asked for labels")
    assert submitter.submissions == 0
    asked = [message["text"] for message in webhook.messages if message["text"].startswith("[labels]")]
    assert len(asked) == 1 and f"mlops labels queue digits --day {day} --budget 100" in asked[0]
    assert _registered_versions() == case.versions_before

    # Too few labels (40 of 100) still asks — and the request itself waits out its cooldown.
    import_answers(tmp_path / "labels", tmp_path / "some.json", dict(list(truth.items())[:40]))
    second = run_job(MODEL, day, settings, submitter=submitter, now=now + timedelta(hours=1))
    assert isinstance(second.summary, ComparedSummary)
    assert second.summary.retrain.new_labels == 40 and submitter.submissions == 0
    assert "request not sent: cooldown" in (second.summary.retrain.reason or "")


def test_drift_with_enough_new_labels_retrains_on_a_new_version_once_per_cooldown(
    retrain_case: RetrainCase, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    case = retrain_case
    day, now, datasets, settings, submitter = case.day, case.now, case.datasets, case.settings, case.submitter
    import_answers(tmp_path / "labels", tmp_path / "export.json", case.truth)  # 150 labels, 100 needed

    first = run_job(MODEL, day, settings, submitter=submitter, now=now)
    second = run_job(MODEL, day, settings, submitter=submitter, now=now + timedelta(hours=2))

    assert isinstance(first.summary, ComparedSummary) and isinstance(second.summary, ComparedSummary)
    assert first.exit_code == 0 and first.summary.retrain.submitted is True, first.summary
    assert first.summary.retrain.new_labels == 150 and first.summary.retrain.dataset_version == "v2"
    assert "registered digits v" in (first.summary.retrain.outcome or "")
    assert second.summary.retrain.as_dict() == {
        "submitted": False,
        "reason": "cooldown",
        "suppressed_until": (now + timedelta(hours=24)).isoformat(),
    }
    assert submitter.submissions == 1
    new_versions = _registered_versions() - case.versions_before
    assert len(new_versions) == 1  # exactly one pipeline run reached the registry
    (version,) = new_versions
    assert MlflowClient().get_model_version(MODEL, version).tags["dataset.version"] == "v2"  # trained on the new data
    assert sorted(path.name for path in (datasets / "digits").iterdir()) == ["v1", "v2"]
