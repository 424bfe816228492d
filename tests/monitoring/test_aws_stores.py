"""The cluster's configuration on loopback: prediction log and reports in S3, the alert on SNS
(delivered to an SQS queue subscribed to the topic), all through one `moto_server`."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.local_traffic import shift_images as shifted
from monitoring.job import run_job
from tests.monitoring.conftest import MODEL, RegisteredDigits, write_prediction_log
from tests.services import MotoS3Server
from workloads.tracking.local import LocalTrackingServer


def test_job_reads_and_writes_s3_and_alerts_on_sns(
    tracking_environment: LocalTrackingServer,
    registered_digits: RegisteredDigits,
    aws_environment: MotoS3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = aws_environment.client()
    predictions, reports = (aws_environment.fresh_bucket(purpose) for purpose in ("predictions", "reports"))
    sqs = aws_environment.client("sqs")
    topic, queue = aws_environment.sns_inbox("drift-alerts")

    day = "2026-11-12"
    with tempfile.TemporaryDirectory() as scratch:  # written locally in the serving layout, then uploaded
        write_prediction_log(
            Path(scratch),
            day,
            shifted(registered_digits.images[:120]),
            registered_digits.weights,
            registered_digits.version,
        )
        for path in Path(scratch).rglob("*.parquet"):
            s3.upload_file(str(path), predictions, f"live/{path.relative_to(scratch).as_posix()}")
    monkeypatch.setenv("MLOPS_PREDICTIONS_STORE", f"s3://{predictions}/live")
    monkeypatch.setenv("MLOPS_REPORTS_STORE", f"s3://{reports}/drift")
    monkeypatch.setenv("MLOPS_DRIFT_SNS_TOPIC_ARN", topic)
    monkeypatch.delenv("MLOPS_DRIFT_WEBHOOK_URL", raising=False)

    result = run_job(MODEL, day, now=datetime(2026, 11, 13, 6, tzinfo=UTC))

    assert result.status == "drift" and result.exit_code == 0, result.summary
    assert result.summary.window.rows_in_window == 120 and result.summary.window.files == 2
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=reports)["Contents"]}
    assert keys == {
        f"drift/{MODEL}/date={day}/report.html",
        f"drift/{MODEL}/date={day}/summary.json",
        f"drift/{MODEL}/alert-state.json",
    }
    stored = json.loads(s3.get_object(Bucket=reports, Key=f"drift/{MODEL}/date={day}/summary.json")["Body"].read())
    assert (
        stored["alert"]["channels"] == ["sns"]
        and stored["report"] == f"s3://{reports}/drift/{MODEL}/date={day}/report.html"
    )
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5).get("Messages", [])
    envelope = json.loads(message["Body"])
    assert envelope["Subject"].startswith(f"[drift] {MODEL} v{registered_digits.version} {day}: dataset drift")
    assert stored["mlflow_run_id"] in envelope["Message"]
