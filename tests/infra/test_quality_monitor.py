"""QualityMonitor alone, under mocks, on small hand-made Args: a daily CronJob an hour after the drift
job, of a hardened pod running the quality job in the drift image, its environment named by
QualitySettings' own variables, an IRSA role that reads the model's predictions and labels and writes
its reports only, and no way in."""

from __future__ import annotations

import json

import pytest

from infra.drift_monitor import DriftMonitorArgs
from infra.quality_monitor import QualityMonitor, QualityMonitorArgs, after_drift
from monitoring.quality_settings import QualitySettings
from tests.infra.component_mocks import CRON_JOB, Declared, assert_hardened_pod, declare, kms_key_arn, shared_services
from workloads import catalogue
from workloads.settings import TrackingClientVariables

DIGITS = catalogue.get("digits")
APP = "quality-digits"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def declare_monitor(drift_schedule: str = "30 4 * * *") -> Declared[QualityMonitor]:
    def build() -> QualityMonitor:
        # The quality job never retrains: the pipelines stand-in fails if it is read.
        drift = DriftMonitorArgs(entry=DIGITS, shared=shared_services(), schedule=drift_schedule)
        arguments = QualityMonitorArgs(drift=drift)
        return QualityMonitor("digits-quality", arguments)

    return declare(build)


def test_one_run_a_day_an_hour_after_the_drift_job_never_overlapping_never_late() -> None:
    declared = declare_monitor("30 4 * * *")

    spec = declared.one(CRON_JOB)["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("30 5 * * *", "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 3600
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 3)
    job = spec["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"], job["ttlSecondsAfterFinished"]) == (2, 3600, 259_200)
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert declared.outputs_of("mlops:monitoring:QualityMonitor") == {"schedule": "30 5 * * *"}


@pytest.mark.parametrize(
    ("drift", "quality"),
    [("30 4 * * *", "30 5 * * *"), ("0 23 * * *", "0 0 * * *"), ("15 6 * * 1-5", "15 7 * * 1-5")],
)
def test_the_quality_schedule_is_the_drift_schedule_an_hour_later(drift: str, quality: str) -> None:
    assert after_drift(drift) == quality


@pytest.mark.parametrize("drift", ["*/30 * * * *", "0 */6 * * *", "0 23 * * 0", "0 4 * *"])
def test_a_drift_schedule_without_a_plain_later_hour_the_same_day_is_refused(drift: str) -> None:
    with pytest.raises(ValueError, match="drift schedule"):
        after_drift(drift)


def test_the_job_pod_is_hardened_and_runs_the_quality_job_for_its_model_in_the_drift_image() -> None:
    spec = declare_monitor().cron_job_pod()

    assert_hardened_pod(spec, irsa_service_account=APP)
    (container,) = spec["containers"]
    assert container["image"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/drift@sha256:" + "b" * 64
    assert container["command"] == ["python", "-m", "monitoring.quality_job"]
    assert container["args"] == ["digits"]
    assert "ports" not in container and "readinessProbe" not in container  # it serves nothing


def test_its_variables_are_quality_settings_own_and_name_the_three_stores_and_the_optional_webhook() -> None:
    declared = declare_monitor()
    (container,) = declared.cron_job_pod()["containers"]
    variables = {variable["name"]: variable for variable in container["env"]}

    settings_variables = set(QualitySettings.variables())
    tracking = {TrackingClientVariables.URI, TrackingClientVariables.USERNAME, TrackingClientVariables.PASSWORD}
    runtime = {"AWS_REGION", "AWS_DEFAULT_REGION", "TMPDIR"}
    # Every variable the job is handed is one QualitySettings reads (or the runtime's): no typo goes unread.
    assert set(variables) - runtime <= settings_variables | tracking, set(variables) - runtime - settings_variables
    for bucket, variable in [
        ("mlops-predictions", "MLOPS_PREDICTIONS_STORE"),
        ("mlops-labels", "MLOPS_LABELS_STORE"),
        ("mlops-reports", "MLOPS_REPORTS_STORE"),
    ]:
        assert variables[variable]["value"] == f"s3://{declared.registered_by(bucket)['name']}"
    webhook = variables["MLOPS_DRIFT_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]
    assert webhook == {"key": "webhook-url", "name": "drift-alerts", "optional": True}
    assert variables[TrackingClientVariables.PASSWORD]["valueFrom"]["secretKeyRef"]["key"] == "password"


def test_the_role_reads_its_predictions_and_labels_prefixes_and_writes_only_its_reports_prefix() -> None:
    declared = declare_monitor()

    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy")["policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    expected_actions = {"Predictions": ["s3:GetObject"], "Labels": ["s3:GetObject"]}
    expected_actions["Reports"] = ["s3:GetObject", "s3:PutObject"]
    assert set(statements) == {
        f"{sid}{suffix}" for sid in expected_actions for suffix in ("ListPrefix", "ObjectsUnderPrefix", "UseBucketKey")
    }
    for sid, actions in expected_actions.items():
        bucket = declared.registered_by(f"mlops-{sid.lower()}")["arn"]
        assert statements[f"{sid}ObjectsUnderPrefix"]["Action"] == actions
        assert statements[f"{sid}ObjectsUnderPrefix"]["Resource"] == f"{bucket}/digits/*"
        assert statements[f"{sid}ListPrefix"]["Resource"] == bucket
        assert statements[f"{sid}ListPrefix"]["Condition"] == {"StringLike": {"s3:prefix": ["digits", "digits/*"]}}
        assert statements[f"{sid}UseBucketKey"]["Resource"] == kms_key_arn(sid.lower())
    # Reading needs only decrypt; writing the reports needs the reports key to encrypt.
    assert statements["LabelsUseBucketKey"]["Action"] == ["kms:Decrypt"]
    assert statements["ReportsUseBucketKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_nothing_reaches_the_job_and_it_reaches_dns_tracking_and_https_only() -> None:
    policy = declare_monitor().one(NETWORK_POLICY)["spec"]

    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == APP
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule["ports"]
        for rule in policy["egress"]
        for peer in rule.get("to", [])
    }
    # No KFP API: it never retrains. The Pushgateway: it pushes its measurements there.
    assert namespaces == {
        "mlflow": [{"port": 5000, "protocol": "TCP"}],
        "monitoring": [{"port": 9091, "protocol": "TCP"}],
    }
    assert len(policy["egress"]) == 4  # DNS, tracking, HTTPS, Pushgateway
