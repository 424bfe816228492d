"""NetworkPolicies over every stack's plan: Prometheus's scrape of the model services is admitted at
both ends, and nothing broader: Grafana and Prometheus are reachable only from where MLflow's UI is."""

from __future__ import annotations

from typing import Any

import pytest

from infra.model_service import PORT as MODEL_SERVICE_PORT
from infra.monitoring_names import (
    ALERTMANAGER_POD,
    GRAFANA_POD,
    GRAFANA_PORT,
    KUBE_STATE_METRICS_POD,
    NAME_LABEL,
    NAMESPACE,
    OPERATOR_POD,
    PROMETHEUS_POD,
    PROMETHEUS_PORT,
    PUSHGATEWAY_POD,
    PUSHGATEWAY_PORT,
)
from infra.platform import MODELS_NAMESPACE
from tests.offline_plans import STACKS, offline_plan

Plan = dict[str, Any]
Labels = dict[str, str]


def _matches(selector: dict[str, Any] | None, labels: Labels) -> bool:
    """Label-selector semantics (matchLabels and the four matchExpressions operators); {} matches all."""
    if selector is None:
        return False
    if not (selector.get("matchLabels") or {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if (operator == "Exists") != present and operator in ("Exists", "DoesNotExist"):
            return False
    return True


def _peer_admits(peer: dict[str, Any], policy_namespace: str, pod: Labels, namespace: Labels) -> bool:
    if "ipBlock" in peer:
        return False  # pods are not addressed by a VPC block here
    in_namespace = (
        _matches(peer["namespaceSelector"], namespace)
        if "namespaceSelector" in peer
        else namespace["kubernetes.io/metadata.name"] == policy_namespace
    )
    return in_namespace and ("podSelector" not in peer or _matches(peer["podSelector"], pod))


def _namespace_labels(plan: Plan, name: str) -> Labels:
    (namespace,) = [
        r["inputs"]["metadata"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:core/v1:Namespace" and r["inputs"]["metadata"]["name"] == name
    ]
    return {**namespace.get("labels", {}), "kubernetes.io/metadata.name": name}


def _policies(plan: Plan, namespace: str) -> list[dict[str, Any]]:
    return [
        r["inputs"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
        and r["inputs"]["metadata"]["namespace"] == namespace
    ]


def _selecting(plan: Plan, namespace: str, pod: Labels) -> list[dict[str, Any]]:
    return [p for p in _policies(plan, namespace) if _matches(p["spec"]["podSelector"], pod)]


def ingress_admits(plan: Plan, to: tuple[str, Labels], source: tuple[str, Labels], port: int) -> bool:
    """Whether any policy selecting the destination pod admits the source pod on `port` (TCP)."""
    return _admits(plan, "ingress", "from", selected=to, peer=source, port=port)


def egress_admits(plan: Plan, source: tuple[str, Labels], to: tuple[str, Labels], port: int) -> bool:
    """Whether any policy selecting the source pod lets it reach the destination pod on `port` (TCP)."""
    return _admits(plan, "egress", "to", selected=source, peer=to, port=port)


def _admits(
    plan: Plan, direction: str, peers_key: str, selected: tuple[str, Labels], peer: tuple[str, Labels], port: int
) -> bool:
    """Whether a `direction` rule of a policy selecting the `selected` pod names `peer` on `port`."""
    (selected_namespace, selected_pod), (peer_namespace, peer_pod) = selected, peer
    namespace = _namespace_labels(plan, peer_namespace)
    for policy in _selecting(plan, selected_namespace, selected_pod):
        for rule in policy["spec"].get(direction) or []:
            ports = {p["port"] for p in rule.get("ports") or []}
            peers = rule.get(peers_key) or []
            if port in ports and any(_peer_admits(each, selected_namespace, peer_pod, namespace) for each in peers):
                return True
    return False


def _own(plan: Plan, namespace: str, pod: Labels) -> dict[str, Any]:
    """The one policy written for that pod (not the namespace's deny-all)."""
    (policy,) = [p for p in _selecting(plan, namespace, pod) if p["spec"]["podSelector"].get("matchLabels")]
    return policy


PROMETHEUS = (NAMESPACE, {NAME_LABEL: PROMETHEUS_POD})
GRAFANA = (NAMESPACE, {NAME_LABEL: GRAFANA_POD})


@pytest.fixture(params=STACKS)
def plan(request: pytest.FixtureRequest) -> Plan:
    return offline_plan(request.param)


def _model_pods(plan: Plan) -> list[Labels]:
    return [
        r["inputs"]["spec"]["template"]["metadata"]["labels"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:apps/v1:Deployment" and r["name"].endswith("-serving-deployment")
    ]


def test_the_scrape_is_admitted_at_both_ends(plan: Plan) -> None:
    pods = _model_pods(plan)
    assert pods
    for pod in pods:
        service = (MODELS_NAMESPACE, pod)
        assert egress_admits(plan, PROMETHEUS, service, MODEL_SERVICE_PORT), pod
        assert ingress_admits(plan, service, PROMETHEUS, MODEL_SERVICE_PORT), pod


def test_prometheus_reaches_the_models_namespace_on_the_service_port_only(plan: Plan) -> None:
    policy = _own(plan, *PROMETHEUS)
    models = _namespace_labels(plan, MODELS_NAMESPACE)
    to_models = [
        rule
        for rule in policy["spec"]["egress"]
        if any(_peer_admits(peer, NAMESPACE, {}, models) for peer in rule.get("to") or [])
    ]
    assert [[p["port"] for p in rule["ports"]] for rule in to_models] == [[MODEL_SERVICE_PORT]]
    # A rule without `to` admits every destination: only DNS and HTTPS (the Kubernetes API) may be that broad.
    open_ports = {p["port"] for rule in policy["spec"]["egress"] if not rule.get("to") for p in rule["ports"]}
    assert open_ports == {53, 443}


def test_grafana_and_prometheus_are_reachable_from_where_mlflow_is(plan: Plan) -> None:
    (mlflow,) = [p for p in _policies(plan, "mlflow") if p["metadata"]["name"] == "mlflow"]
    mlflow_sources = [peer for rule in mlflow["spec"]["ingress"] for peer in rule["from"]]
    grafana = _own(plan, *GRAFANA)
    assert [[p["port"] for p in rule["ports"]] for rule in grafana["spec"]["ingress"]] == [[GRAFANA_PORT]]
    assert grafana["spec"]["ingress"][0]["from"] == mlflow_sources
    # Prometheus' API: the platform namespaces, never the VPC's load balancer (it has no Ingress).
    prometheus = _own(plan, *PROMETHEUS)
    api = [rule for rule in prometheus["spec"]["ingress"] if PROMETHEUS_PORT in {p["port"] for p in rule["ports"]}]
    assert [rule["from"] for rule in api] == [[peer for peer in mlflow_sources if "ipBlock" not in peer]]


def test_a_namespace_outside_the_platform_reaches_nothing(plan: Plan) -> None:
    outsider_namespace = {"kubernetes.io/metadata.name": "default"}
    for pod, port in ((PROMETHEUS[1], PROMETHEUS_PORT), (GRAFANA[1], GRAFANA_PORT)):
        for policy in _selecting(plan, NAMESPACE, pod):
            for rule in policy["spec"]["ingress"]:
                assert not any(_peer_admits(peer, NAMESPACE, {}, outsider_namespace) for peer in rule["from"]), port


def test_every_monitoring_pod_has_its_policy_and_the_rest_is_denied(plan: Plan) -> None:
    for pod in (PROMETHEUS_POD, ALERTMANAGER_POD, GRAFANA_POD, KUBE_STATE_METRICS_POD, OPERATOR_POD, PUSHGATEWAY_POD):
        selecting = _selecting(plan, NAMESPACE, {NAME_LABEL: pod})
        assert len(selecting) == 2, pod  # its own and the namespace's deny-all
    (deny,) = [p for p in _policies(plan, NAMESPACE) if p["spec"]["podSelector"] in ({}, None)] or [None]
    assert deny is not None and deny["spec"]["ingress"] == [] and deny["spec"]["egress"] == []
    # Only Prometheus scrapes kube-state-metrics; Grafana does not reach it.
    ksm = (NAMESPACE, {NAME_LABEL: KUBE_STATE_METRICS_POD})
    assert ingress_admits(plan, ksm, PROMETHEUS, 8080) and not ingress_admits(plan, ksm, GRAFANA, 8080)


def _daily_job_pods(plan: Plan) -> list[Labels]:
    return [
        r["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        for r in plan["resources"]
        if r["type"] == "kubernetes:batch/v1:CronJob" and r["inputs"]["metadata"]["namespace"] == MODELS_NAMESPACE
    ]


def test_only_the_daily_jobs_push_and_only_prometheus_scrapes_the_pushgateway(plan: Plan) -> None:
    pushgateway = (NAMESPACE, {NAME_LABEL: PUSHGATEWAY_POD})
    pods = _daily_job_pods(plan)
    jobs = [pod for pod in pods if pod.get("mlops.platform/daily-job") == "true"]
    assert {pod[NAME_LABEL].split("-")[0] for pod in jobs} == {"drift", "quality"}
    for queue in (pod for pod in pods if pod[NAME_LABEL].startswith("labelling-")):  # it pushes nothing
        assert not ingress_admits(plan, pushgateway, (MODELS_NAMESPACE, queue), PUSHGATEWAY_PORT), queue
    for pod in jobs:
        job = (MODELS_NAMESPACE, pod)
        assert egress_admits(plan, job, pushgateway, PUSHGATEWAY_PORT), pod
        assert ingress_admits(plan, pushgateway, job, PUSHGATEWAY_PORT), pod
    assert egress_admits(plan, PROMETHEUS, pushgateway, PUSHGATEWAY_PORT)
    assert ingress_admits(plan, pushgateway, PROMETHEUS, PUSHGATEWAY_PORT)
    for other in (*[(MODELS_NAMESPACE, pod) for pod in _model_pods(plan)], GRAFANA):
        assert not ingress_admits(plan, pushgateway, other, PUSHGATEWAY_PORT), other
    assert [rule.get("to") for rule in _own(plan, *pushgateway)["spec"]["egress"]] == [None], "out: DNS only"
