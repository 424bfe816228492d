"""The monitoring stack over every stack's offline plan: pinned, hardened, sized per stack, secrets kept out."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.monitoring_names import GRAFANA_ADMIN_SECRET, NAMESPACE, RELEASE_NAME
from infra.monitoring_stack import KUBE_PROMETHEUS_STACK
from infra.monitoring_values import RETENTION_SIZE_SHARE
from infra.offline_plan import SECRET, load_stack_config
from tests.offline_plans import STACKS, offline_plan

RELEASE = "kubernetes:helm.sh/v3:Release"
CUSTOM_RESOURCES = (
    "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
    "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    "kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig",
)
# Value paths of every container the chart renders from values, and of every pod's security context.
RESOURCE_PATHS = (
    "prometheusOperator.resources",
    "prometheusOperator.prometheusConfigReloader.resources",
    "prometheus.prometheusSpec.resources",
    "alertmanager.alertmanagerSpec.resources",
    "grafana.resources",
    "grafana.sidecar.resources",
    "kube-state-metrics.resources",
)
POD_SECURITY_PATHS = (
    "prometheusOperator.securityContext",
    "prometheus.prometheusSpec.securityContext",
    "alertmanager.alertmanagerSpec.securityContext",
    "grafana.securityContext",
    "kube-state-metrics.securityContext",
)
# The operator hardens the Prometheus, Alertmanager and reloader containers itself (infra/monitoring_values.py).
CONTAINER_SECURITY_PATHS = (
    "prometheusOperator.containerSecurityContext",
    "grafana.containerSecurityContext",
    "grafana.sidecar.securityContext",
    "kube-state-metrics.containerSecurityContext",
)


def _release(plan: dict[str, Any]) -> dict[str, Any]:
    (release,) = [
        r
        for r in plan["resources"]
        if r["type"] == RELEASE and r["inputs"].get("namespace") == NAMESPACE and r["inputs"]["name"] == RELEASE_NAME
    ]
    return release


def _at(values: dict[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        assert isinstance(node, dict) and key in node, f"{path}: no {key}"
        node = node[key]
    return node


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


def test_the_release_is_pinned(stack: str) -> None:
    inputs = _release(offline_plan(stack))["inputs"]
    assert (inputs["chart"], inputs["version"], inputs["repositoryOpts"]["repo"]) == (
        KUBE_PROMETHEUS_STACK.chart,
        KUBE_PROMETHEUS_STACK.version,
        KUBE_PROMETHEUS_STACK.repository,
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", inputs["version"]), "an exact chart version, not a range"
    # A fixed release name: Helm's `release` label and every chart object name follow it.
    assert inputs["name"] == RELEASE_NAME and inputs["atomic"] is True


def test_every_component_has_requests_and_limits(stack: str) -> None:
    values = _release(offline_plan(stack))["inputs"]["values"]
    for path in RESOURCE_PATHS:
        resources = _at(values, path)
        for kind in ("requests", "limits"):
            assert set(resources[kind]) >= {"cpu", "memory"}, f"{path}.{kind}"


def test_every_pod_runs_non_root_and_every_container_read_only(stack: str) -> None:
    values = _release(offline_plan(stack))["inputs"]["values"]
    for path in POD_SECURITY_PATHS:
        pod = _at(values, path)
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, path
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, path
    for path in CONTAINER_SECURITY_PATHS:
        container = _at(values, path)
        assert container["readOnlyRootFilesystem"] is True, path
        assert container["allowPrivilegeEscalation"] is False and container["privileged"] is False, path
        assert container["capabilities"] == {"drop": ["ALL"]}, path


def test_what_cannot_run_restricted_is_off(stack: str) -> None:
    values = _release(offline_plan(stack))["inputs"]["values"]
    # Host namespaces and paths (node-exporter), a root init container (Grafana's chown), cert Jobs.
    assert values["nodeExporter"]["enabled"] is False
    assert values["grafana"]["initChownData"]["enabled"] is False
    assert values["grafana"]["persistence"]["enabled"] is False
    assert values["prometheusOperator"]["admissionWebhooks"]["enabled"] is False
    # Webhooks off leaves no certificate: TLS must be off too, or the operator waits for a Secret forever.
    assert values["prometheusOperator"]["tls"]["enabled"] is False
    namespace = next(r for r in offline_plan(stack)["resources"] if r["name"] == "mlops-monitoring-namespace")[
        "inputs"
    ]["metadata"]
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_retention_and_storage_follow_the_stack(stack: str) -> None:
    settings = json.loads(load_stack_config(stack).values["mlops-platform:monitoring"])
    spec = _release(offline_plan(stack))["inputs"]["values"]["prometheus"]["prometheusSpec"]
    assert spec["retention"] == f"{settings['prometheusRetentionDays']}d"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["resources"]["requests"]["storage"] == f"{settings['prometheusStorageGib']}Gi"
    # The size limit bites before the volume is full (a full volume stops ingestion).
    assert spec["retentionSize"] == f"{int(settings['prometheusStorageGib'] * RETENTION_SIZE_SHARE)}GiB"
    (storage_class,) = [
        r["inputs"]
        for r in offline_plan(stack)["resources"]
        if r["type"] == "kubernetes:storage.k8s.io/v1:StorageClass"
    ]
    assert claim["storageClassName"] == storage_class["metadata"]["name"]
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true"}


def test_prod_keeps_its_metrics_volume_and_dev_does_not() -> None:
    def reclaim(stack: str) -> str:
        (storage_class,) = [
            r["inputs"]
            for r in offline_plan(stack)["resources"]
            if r["type"] == "kubernetes:storage.k8s.io/v1:StorageClass"
        ]
        return storage_class["reclaimPolicy"]

    assert (reclaim("dev"), reclaim("prod")) == ("Delete", "Retain")


def test_prometheus_selects_objects_of_the_models_and_its_own_namespace_only(stack: str) -> None:
    spec = _release(offline_plan(stack))["inputs"]["values"]["prometheus"]["prometheusSpec"]
    expected = {
        "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": [NAMESPACE, "models"]}]
    }
    for kind in ("serviceMonitor", "rule"):
        # False: an empty selector is rendered as `{}` (all objects), not as the chart's `release` label.
        assert spec[f"{kind}SelectorNilUsesHelmValues"] is False
        assert spec.get(f"{kind}Selector") in (None, {})
        assert spec[f"{kind}NamespaceSelector"] == expected


def test_no_secret_in_plain_text(stack: str) -> None:
    plan = offline_plan(stack)
    (admin,) = [
        r["inputs"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:Secret" and r["inputs"]["metadata"]["name"] == GRAFANA_ADMIN_SECRET
    ]
    assert admin["metadata"]["namespace"] == NAMESPACE and admin["stringData"] == SECRET
    values = _release(plan)["inputs"]["values"]
    assert values["grafana"]["admin"]["existingSecret"] == GRAFANA_ADMIN_SECRET
    flat = json.dumps(values).lower()
    for leak in ("adminpassword", 'password": "', 'api_url"', "webhook_url", "hooks.slack.com"):
        assert leak not in flat, leak
    routing = {r["name"]: r["inputs"] for r in plan["resources"] if r["type"].endswith(":AlertmanagerConfig")}
    (slack,) = routing["mlops-alert-routing-config"]["spec"]["receivers"][0]["slackConfigs"]
    assert slack["apiURL"] == {"name": "drift-alerts", "key": "webhook-url"}


def test_custom_resources_wait_for_the_release_that_installs_their_crds(stack: str) -> None:
    plan = offline_plan(stack)
    release = _release(plan)["name"]
    custom = [r for r in plan["resources"] if r["type"] in CUSTOM_RESOURCES]
    assert custom
    for resource in custom:
        assert release in resource["dependencies"], resource["name"]


def test_grafana_is_reached_as_the_mlflow_ui(stack: str) -> None:
    plan = offline_plan(stack)
    values = _release(plan)["inputs"]["values"]
    assert values["grafana"]["service"]["type"] == "ClusterIP"
    ingresses = {
        r["inputs"]["metadata"]["namespace"]: r["inputs"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:networking.k8s.io/v1:Ingress"
    }
    assert ("mlflow" in ingresses) == (NAMESPACE in ingresses)
    if NAMESPACE in ingresses:
        for key in ("alb.ingress.kubernetes.io/scheme", "alb.ingress.kubernetes.io/target-type"):
            assert (
                ingresses[NAMESPACE]["metadata"]["annotations"][key]
                == ingresses["mlflow"]["metadata"]["annotations"][key]
            )
        assert ingresses[NAMESPACE]["metadata"]["annotations"]["alb.ingress.kubernetes.io/scheme"] == "internal"


def test_alertmanager_groups_per_model_and_inhibits_tickets_while_paging(stack: str) -> None:
    values = _release(offline_plan(stack))["inputs"]["values"]
    config = values["alertmanager"]["config"]
    assert config["route"]["group_by"] == ["alertname", "model"]
    # Given whole: the chart's Watchdog route and critical/warning inhibitions must not survive the merge.
    assert config["route"]["routes"] == []
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["source_matchers"] == ['severity="page"'] and 'severity="ticket"' in inhibit["target_matchers"]
    assert inhibit["equal"] == ["model"]
    spec = values["alertmanager"]["alertmanagerSpec"]
    assert spec["alertmanagerConfigMatcherStrategy"] == {"type": "None"}
    assert spec["alertmanagerConfigNamespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "models"}}


def test_the_sidecar_loads_the_platforms_dashboards_and_the_charts_stay_off(stack: str) -> None:
    from infra.monitoring_names import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE

    grafana = _release(offline_plan(stack))["inputs"]["values"]["grafana"]
    assert grafana["defaultDashboardsEnabled"] is False
    assert _at(grafana, "sidecar.dashboards") == {
        "enabled": True,
        "label": DASHBOARD_LABEL,
        "labelValue": DASHBOARD_LABEL_VALUE,
        "searchNamespace": [NAMESPACE],
        "resource": "configmap",
    }
