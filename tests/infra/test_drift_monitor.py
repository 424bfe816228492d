"""DriftMonitor alone, under mocks, on small hand-made Args: a daily, non-overlapping CronJob of a
hardened pod, an IRSA role that reads its model's predictions and writes its model's reports only,
and egress to the pipelines API only where the job may retrain."""

from __future__ import annotations

import json

import pytest

from infra.drift_monitor import DriftMonitor, DriftMonitorArgs
from tests.infra.component_mocks import CRON_JOB, Declared, assert_hardened_pod, declare, kms_key_arn, shared_services
from workloads import catalogue

DIGITS = catalogue.get("digits")
APP = "drift-digits"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def declare_monitor(may_retrain: bool = False) -> Declared[DriftMonitor]:
    def build() -> DriftMonitor:
        # Without retraining the job must not even look at the pipelines (the stand-in fails if read).
        shared = shared_services(pipelines_namespace="kubeflow" if may_retrain else None, datasets=may_retrain)
        settings = {"MLOPS_DRIFT_RETRAIN": "kfp" if may_retrain else "off", "MLOPS_DRIFT_COOLDOWN_HOURS": "24"}
        arguments = DriftMonitorArgs(
            entry=DIGITS, shared=shared, schedule="30 5 * * *", settings=settings, may_retrain=may_retrain
        )
        return DriftMonitor("digits-drift", arguments)

    return declare(build)


def test_one_run_a_day_at_the_schedule_never_overlapping_never_late() -> None:
    declared = declare_monitor()

    spec = declared.one(CRON_JOB)["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("30 5 * * *", "Etc/UTC")
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 3600
    job = spec["jobTemplate"]["spec"]
    assert (job["backoffLimit"], job["activeDeadlineSeconds"], job["ttlSecondsAfterFinished"]) == (2, 3600, 259_200)
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert declared.outputs_of("mlops:monitoring:DriftMonitor") == {"schedule": "30 5 * * *"}


def test_the_job_pod_is_hardened_and_runs_the_drift_job_for_its_model() -> None:
    spec = declare_monitor().cron_job_pod()

    assert_hardened_pod(spec, irsa_service_account=APP)
    (container,) = spec["containers"]
    assert container["command"] == ["python", "-m", "monitoring.job"]
    assert container["args"] == ["--model", "digits"]
    assert "ports" not in container and "readinessProbe" not in container  # it serves nothing


def test_it_reads_the_predictions_and_writes_the_reports_of_its_model_and_its_webhook_is_optional() -> None:
    declared = declare_monitor()
    (container,) = declared.cron_job_pod()["containers"]
    variables = {variable["name"]: variable for variable in container["env"]}

    predictions = declared.registered_by("mlops-predictions")["name"]
    reports = declared.registered_by("mlops-reports")["name"]
    assert variables["MLOPS_PREDICTIONS_STORE"]["value"] == f"s3://{predictions}"
    assert variables["MLOPS_REPORTS_STORE"]["value"] == f"s3://{reports}"
    webhook = variables["MLOPS_DRIFT_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]
    assert webhook == {"key": "webhook-url", "name": "drift-alerts", "optional": True}
    assert variables["MLOPS_DRIFT_COOLDOWN_HOURS"]["value"] == "24"  # the stack's settings pass through


def test_the_role_reads_its_predictions_prefix_and_writes_only_its_reports_prefix() -> None:
    declared = declare_monitor()

    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy")["policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    predictions = declared.registered_by("mlops-predictions")["arn"]
    reports = declared.registered_by("mlops-reports")["arn"]
    assert statements["PredictionsObjectsUnderPrefix"] == {
        "Action": ["s3:GetObject"],
        "Effect": "Allow",
        "Resource": f"{predictions}/digits/*",
        "Sid": "PredictionsObjectsUnderPrefix",
    }
    assert statements["ReportsObjectsUnderPrefix"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert statements["ReportsObjectsUnderPrefix"]["Resource"] == f"{reports}/digits/*"
    # Reading needs the predictions key to decrypt; writing reports needs the reports key to encrypt.
    assert statements["PredictionsUseBucketKey"]["Action"] == ["kms:Decrypt"]
    assert statements["PredictionsUseBucketKey"]["Resource"] == kms_key_arn("predictions")
    assert statements["ReportsUseBucketKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statements["ReportsUseBucketKey"]["Resource"] == kms_key_arn("reports")
    assert not [s for s in policy["Statement"] if s["Action"] == "*" or s.get("Resource") == "*"]


@pytest.mark.parametrize("may_retrain", [False, True], ids=["reports-only", "may-retrain"])
def test_nothing_reaches_the_job_and_it_reaches_the_pipelines_api_only_when_it_may_retrain(may_retrain: bool) -> None:
    policy = declare_monitor(may_retrain).one(NETWORK_POLICY)["spec"]

    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule["ports"]
        for rule in policy["egress"]
        for peer in rule.get("to", [])
    }
    # The Pushgateway, where it pushes its results (infra/pushgateway.py admits exactly these pods).
    expected = {"mlflow": [{"port": 5000, "protocol": "TCP"}], "monitoring": [{"port": 9091, "protocol": "TCP"}]}
    if may_retrain:
        expected["kubeflow"] = [{"port": 8888, "protocol": "TCP"}]
    assert namespaces == expected


def test_a_job_that_may_retrain_reads_its_labels_and_adds_versions_of_its_dataset_only() -> None:
    declared = declare_monitor(may_retrain=True)

    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy")["policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    labels = declared.registered_by("mlops-labels")["arn"]
    datasets = declared.registered_by("mlops-datasets")["arn"]
    assert statements["RetrainLabelsObjectsUnderPrefix"]["Action"] == ["s3:GetObject"]
    assert statements["RetrainLabelsObjectsUnderPrefix"]["Resource"] == f"{labels}/digits/*"
    # Read and add, never delete: versions are immutable; only the model's own dataset.
    assert statements["RetrainDatasetObjectsUnderPrefix"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert statements["RetrainDatasetObjectsUnderPrefix"]["Resource"] == f"{datasets}/datasets/digits/*"
    assert not [s for s in policy["Statement"] if "Delete" in json.dumps(s["Action"]) or s.get("Resource") == "*"]
    plain = json.loads(declare_monitor().one("aws:iam/rolePolicy:RolePolicy")["policy"])
    assert not [s for s in plain["Statement"] if s["Sid"].startswith("Retrain")]  # only where it may retrain
