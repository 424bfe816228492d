"""Per model, over every stack's plan: one ServiceMonitor that selects exactly its Service and produces
the `job` the rules select, and one PrometheusRule holding the generator's group for its entry."""

from __future__ import annotations

from typing import Any

import pytest

from infra.platform import MODELS_NAMESPACE
from observability.rules import model_rule_group
from observability.targets import ModelTargets
from tests.offline_plans import STACKS, offline_plan
from workloads import catalogue

SERVICE_MONITOR = "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"
PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
Plan = dict[str, Any]


def _of(plan: Plan, resource_type: str) -> list[dict[str, Any]]:
    return [r["inputs"] for r in plan["resources"] if r["type"] == resource_type]


def _enabled(plan: Plan) -> set[str]:
    return {r["name"].removeprefix("mlops-model-") for r in plan["resources"] if r["type"] == "mlops:platform:Model"}


def _named(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["metadata"]["name"] == name]
    return found


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest) -> Plan:
    return offline_plan(request.param)


def test_one_service_monitor_and_one_rule_object_per_enabled_model(plan: Plan) -> None:
    enabled = _enabled(plan)
    assert enabled
    # The models' own; the GPU pools' DCGM exporter has one in the monitoring namespace (infra/gpu_metrics.py).
    monitors = [m for m in _of(plan, SERVICE_MONITOR) if m["metadata"]["namespace"] == MODELS_NAMESPACE]
    rules = _of(plan, PROMETHEUS_RULE)
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(f"serve-{model}" for model in enabled)
    assert sorted(r["metadata"]["name"] for r in rules) == sorted(f"model-{model}" for model in enabled)
    assert {obj["metadata"]["namespace"] for obj in monitors + rules} == {MODELS_NAMESPACE}


def test_rule_groups_are_the_generators_output(plan: Plan) -> None:
    rules = _of(plan, PROMETHEUS_RULE)
    for model in _enabled(plan):
        expected = [model_rule_group(catalogue.get(model), MODELS_NAMESPACE)]
        assert _named(rules, f"model-{model}")["spec"]["groups"] == expected


def test_the_service_monitor_selects_the_model_service_and_its_port(plan: Plan) -> None:
    services = _of(plan, "kubernetes:core/v1:Service")
    deployments = _of(plan, "kubernetes:apps/v1:Deployment")
    for model in _enabled(plan):
        job = ModelTargets(model).deployment
        monitor = _named(_of(plan, SERVICE_MONITOR), job)["spec"]
        selected = [
            service
            for service in services
            if service["metadata"]["namespace"] in monitor["namespaceSelector"]["matchNames"]
            and monitor["selector"]["matchLabels"].items() <= (service["metadata"].get("labels") or {}).items()
        ]
        # Exactly one Service, and its name is the `job` the rules select (no jobLabel: job = Service name).
        assert [service["metadata"]["name"] for service in selected] == [job]
        (endpoint,) = monitor["endpoints"]
        assert "jobLabel" not in monitor
        (port,) = [p for p in selected[0]["spec"]["ports"] if p["name"] == endpoint["port"]]
        # The Service's target is the container port BentoML serves /metrics on.
        (container,) = _named(deployments, job)["spec"]["template"]["spec"]["containers"]
        assert port["targetPort"] in {p["name"] for p in container["ports"]}
        assert endpoint["path"] == "/metrics"
        # Without it the scrape's `endpoint` target label would replace BentoML's route label.
        assert endpoint["honorLabels"] is True


def test_the_rules_select_the_scraped_job(plan: Plan) -> None:
    for model in _enabled(plan):
        (group,) = _named(_of(plan, PROMETHEUS_RULE), f"model-{model}")["spec"]["groups"]
        availability = next(rule for rule in group["rules"] if rule.get("record", "").endswith("ratio_rate5m"))
        assert (
            f'job="{_named(_of(plan, SERVICE_MONITOR), f"serve-{model}")["metadata"]["name"]}"' in availability["expr"]
        )


def test_alerts_go_to_the_drift_alerts_webhook_secret(plan: Plan) -> None:
    """The AlertmanagerConfig reads the same Secret and key as the drift jobs, in their namespace."""
    routings = [r["inputs"] for r in plan["resources"] if r["type"].endswith(":AlertmanagerConfig")]
    (routing,) = [config for config in routings if config["metadata"]["name"] == "model-alerts"]
    (slack,) = routing["spec"]["receivers"][0]["slackConfigs"]
    alerting = [
        job
        for job in _of(plan, "kubernetes:batch/v1:CronJob")
        if job["metadata"]["name"].startswith(("drift-", "quality-"))
    ]
    assert alerting  # the drift and quality jobs alert; the labelling queue never does (it has no webhook)
    for cron_job in alerting:
        (container,) = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        (webhook,) = [env for env in container["env"] if env["name"] == "MLOPS_DRIFT_WEBHOOK_URL"]
        reference = webhook["valueFrom"]["secretKeyRef"]
        assert {"name": reference["name"], "key": reference["key"]} == slack["apiURL"]
        assert cron_job["metadata"]["namespace"] == routing["metadata"]["namespace"]


def test_one_dashboard_config_map_per_enabled_model_and_the_overview(plan: Plan) -> None:
    from infra.monitoring_names import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, NAMESPACE
    from observability.dashboards import OVERVIEW_UID, dashboard_json, model_dashboard, model_uid

    dashboards = [
        obj
        for obj in _of(plan, "kubernetes:core/v1:ConfigMap")
        if obj["metadata"].get("labels", {}).get(DASHBOARD_LABEL) == DASHBOARD_LABEL_VALUE
    ]
    enabled = _enabled(plan)
    expected = sorted(f"dashboard-{uid}" for uid in [*(model_uid(model) for model in enabled), OVERVIEW_UID])
    assert sorted(obj["metadata"]["name"] for obj in dashboards) == expected
    assert {obj["metadata"]["namespace"] for obj in dashboards} == {NAMESPACE}
    on_gpu = {r["inputs"]["metadata"]["name"] for r in plan["resources"] if r["type"].endswith(":ScaledObject")}
    for model in enabled:
        data = _named(dashboards, f"dashboard-{model_uid(model)}")["data"]
        dashboard = model_dashboard(catalogue.get(model), MODELS_NAMESPACE, on_gpu=f"serve-{model}" in on_gpu)
        assert data == {f"{model_uid(model)}.json": dashboard_json(dashboard)}
