"""The stack's SNS alert topic: encrypted, TLS only, published to by Alertmanager (IRSA, exactly that
topic and its key) and by the daily drift and quality jobs, and routed to by an AlertmanagerConfig of its own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.alert_routing import SNS_RECEIVER, route_spec
from infra.monitoring_names import ALERTMANAGER_SERVICE_ACCOUNT
from tests.ci.custom_resources import ALERTMANAGER_CONFIG
from tests.ci.test_manifests import custom_resource_problems
from tests.infra.conftest import Plan, named, policy_document, role_policy

TOPIC = "aws:sns/topic:Topic"
AMC = "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig"


def _topic(plan: Plan) -> dict[str, Any]:
    return named(plan, TOPIC, "mlops-alerts-topic")


def _alerts_key_arn(plan: Plan) -> str:
    return _topic(plan)["inputs"]["kmsMasterKeyId"]


def test_one_encrypted_topic_per_stack_that_refuses_plain_http(plan: Plan) -> None:
    topic = _topic(plan)["inputs"]
    assert topic["name"] == f"mlops-{plan['stack']}-model-alerts"
    key = named(plan, "aws:kms/key:Key", "mlops-keys-alerts")
    assert key["inputs"]["enableKeyRotation"] is True
    assert topic["kmsMasterKeyId"].startswith("arn:aws:kms:")
    (deny,) = policy_document(
        named(plan, "aws:sns/topicPolicy:TopicPolicy", "mlops-alerts-topic-tls-only")["inputs"]["policy"]
    )["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_alertmanager_may_publish_to_that_topic_only(plan: Plan) -> None:
    role = named(plan, "aws:iam/role:Role", "mlops-monitoring-alertmanager")["inputs"]
    (trust,) = policy_document(role["assumeRolePolicy"])["Statement"]
    subjects = [value for key, value in trust["Condition"]["StringEquals"].items() if key.endswith(":sub")]
    assert subjects == [f"system:serviceaccount:monitoring:{ALERTMANAGER_SERVICE_ACCOUNT}"]
    statements = {s["Sid"]: s for s in role_policy(plan, "mlops-monitoring-alertmanager")["Statement"]}
    assert set(statements) == {"PublishAlerts", "EncryptAlerts"}
    assert statements["PublishAlerts"]["Action"] == ["sns:Publish"]
    assert statements["PublishAlerts"]["Resource"] == plan["outputs"]["alertsTopicArn"]
    assert statements["EncryptAlerts"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert statements["EncryptAlerts"]["Resource"] == _alerts_key_arn(plan)
    values = named(plan, "kubernetes:helm.sh/v3:Release", "mlops-monitoring-release")["inputs"]["values"]
    account = values["alertmanager"]["serviceAccount"]
    assert account["name"] == ALERTMANAGER_SERVICE_ACCOUNT
    assert account["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_model_alerts_reach_sns_by_a_route_of_their_own(plan: Plan) -> None:
    config = named(plan, AMC, "mlops-alert-routing-sns")["inputs"]
    assert config["metadata"]["name"] == SNS_RECEIVER
    assert custom_resource_problems(config, ALERTMANAGER_CONFIG) == []
    (receiver,) = config["spec"]["receivers"]
    (sns,) = receiver["snsConfigs"]
    assert sns["topicARN"] == plan["outputs"]["alertsTopicArn"]
    assert sns["sigv4"] == {"region": "eu-west-1"}  # no keys: the IRSA role signs
    assert config["spec"]["route"] == route_spec(SNS_RECEIVER)
    # The webhook's route is the same one, to the webhook: an alert reaches both channels.
    webhook = named(plan, AMC, "mlops-alert-routing-config")["inputs"]["spec"]["route"]
    assert {**webhook, "receiver": SNS_RECEIVER, "routes": config["spec"]["route"]["routes"]} == config["spec"]["route"]


def test_a_misspelt_sns_field_fails_the_strict_schema(plan: Plan) -> None:
    config = copy.deepcopy(named(plan, AMC, "mlops-alert-routing-sns")["inputs"])
    config["spec"]["receivers"][0]["snsConfigs"][0]["topicArn"] = "arn:aws:sns:eu-west-1:1:x"
    assert custom_resource_problems(config, ALERTMANAGER_CONFIG)


@pytest.mark.parametrize("job", ["drift", "quality"])
def test_the_daily_jobs_publish_their_alerts_to_the_same_topic(plan: Plan, job: str) -> None:
    topic_arn = plan["outputs"]["alertsTopicArn"]
    models = [name.removeprefix("mlops-model-").removesuffix(f"-{job}-cronjob") for name in _cron_jobs(plan, job)]
    assert models
    for model in models:
        cron_job = named(plan, "kubernetes:batch/v1:CronJob", f"mlops-model-{model}-{job}-cronjob")["inputs"]
        env = {
            e["name"]: e for e in cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["MLOPS_DRIFT_SNS_TOPIC_ARN"]["value"] == topic_arn
        statements = {s["Sid"]: s for s in role_policy(plan, f"mlops-model-{model}-{job}-role")["Statement"]}
        assert statements["PublishAlerts"]["Resource"] == topic_arn
        assert statements["EncryptAlerts"]["Resource"] == _alerts_key_arn(plan)


def _cron_jobs(plan: Plan, job: str) -> list[str]:
    return [
        r["name"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:batch/v1:CronJob" and r["name"].endswith(f"-{job}-cronjob")
    ]
