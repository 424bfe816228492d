"""LabellingQueue alone, under mocks: a daily CronJob beside the quality job, of a hardened pod running
the labelling queue in the drift image with the entry's budget, its environment named by the
queue's own settings, an IRSA role that reads the model's predictions, labels and reports and may
only add the queue and its record, and nothing in, DNS and HTTPS out."""

from __future__ import annotations

import json

import pytest

from infra.labelling_queue import LabellingQueue, LabellingQueueArgs
from monitoring.labelling_queue_settings import LabellingQueueSettings
from tests.infra.component_mocks import CRON_JOB, Declared, assert_hardened_pod, declare, kms_key_arn, shared_services
from workloads import catalogue
from workloads.catalogue_entry import ENTRY_VARIABLE

DIGITS = catalogue.get("digits")
APP = "labelling-queue-digits"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


@pytest.fixture(scope="module")
def declared() -> Declared[LabellingQueue]:
    """The queue of digits, declared once for the module: every test only reads what it recorded."""
    return declare(
        lambda: LabellingQueue(
            "digits-labelling-queue",
            LabellingQueueArgs(entry=DIGITS, shared=shared_services(), schedule="30 5 * * *"),
        )
    )


def test_the_pod_is_hardened_and_queues_the_entrys_budget_in_the_drift_image(
    declared: Declared[LabellingQueue],
) -> None:
    spec = declared.one(CRON_JOB)["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"]) == ("30 5 * * *", "Forbid")
    pod = declared.cron_job_pod()
    assert_hardened_pod(pod, irsa_service_account=APP)
    (container,) = pod["containers"]
    assert container["image"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/drift@sha256:" + "b" * 64
    assert container["command"] == ["python", "-m", "monitoring.labelling_queue"]
    assert container["args"] == ["digits", "--budget", str(DIGITS.labelling_budget)]
    # No tracking credentials in this pod, so no policy skip for them either.
    assert set(declared.one(CRON_JOB)["metadata"]["annotations"]) == {"checkov.io/skip1"}


def test_its_variables_are_the_queues_own_and_name_the_stores_and_the_queue_in_the_labels_bucket(
    declared: Declared[LabellingQueue],
) -> None:
    (container,) = declared.cron_job_pod()["containers"]
    variables = {variable["name"]: variable for variable in container["env"]}
    runtime = {"AWS_REGION", "AWS_DEFAULT_REGION", "TMPDIR", ENTRY_VARIABLE}
    assert set(variables) - runtime <= set(LabellingQueueSettings.variables()), set(variables) - runtime
    assert not any(name.startswith("MLFLOW_") for name in variables)
    labels = declared.registered_by("mlops-labels")["name"]
    assert variables["MLOPS_LABELLING_QUEUE_STORE"]["value"] == f"s3://{labels}/labelling-queue"
    assert variables["MLOPS_LABELS_STORE"]["value"] == f"s3://{labels}"
    assert json.loads(variables[ENTRY_VARIABLE]["value"])["class_names"] == list(DIGITS.class_names)


def test_the_role_reads_three_prefixes_and_adds_only_the_queue_and_its_record(
    declared: Declared[LabellingQueue],
) -> None:
    policy = json.loads(declared.one("aws:iam/rolePolicy:RolePolicy")["policy"])
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    for sid in ("Predictions", "Labels", "Reports"):
        bucket = declared.registered_by(f"mlops-{sid.lower()}")["arn"]
        assert statements[f"{sid}ObjectsUnderPrefix"]["Action"] == ["s3:GetObject"]
        assert statements[f"{sid}ObjectsUnderPrefix"]["Resource"] == f"{bucket}/digits/*"
        assert statements[f"{sid}UseBucketKey"]["Action"] == ["kms:Decrypt"]
    labels, reports = declared.registered_by("mlops-labels")["arn"], declared.registered_by("mlops-reports")["arn"]
    assert statements["QueueObjectsUnderPrefix"]["Action"] == ["s3:PutObject"]
    assert statements["QueueObjectsUnderPrefix"]["Resource"] == f"{labels}/labelling-queue/digits/*"
    assert statements["QueueUseBucketKey"]["Resource"] == kms_key_arn("labels")
    assert statements["QueueRecord"]["Resource"] == f"{reports}/digits/date=*/labelling-queue/*"
    assert statements["QueueRecordKey"] == {
        "Sid": "QueueRecordKey",
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey"],
        "Resource": kms_key_arn("reports"),
    }
    writes = [s for s in policy["Statement"] if any(a in ("s3:PutObject", "s3:DeleteObject") for a in s["Action"])]
    assert {statement["Sid"] for statement in writes} == {"QueueObjectsUnderPrefix", "QueueRecord"}


def test_nothing_reaches_the_job_and_it_reaches_dns_and_https_only(declared: Declared[LabellingQueue]) -> None:
    policy = declared.one(NETWORK_POLICY)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"] and policy["ingress"] == []
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == APP
    assert all("to" not in rule for rule in policy["egress"])  # no tracking server, no other namespace
    ports = sorted(port["port"] for rule in policy["egress"] for port in rule["ports"])
    assert ports == [53, 53, 443]
