"""NetworkPolicies of the monitoring namespace: each of the chart's pods gets only the traffic it needs.

The chart's own policies are off (they would be opaque Helm output): these are plan objects, which
the tests, checkov and the policy pack read. Pod labels and ports are the chart's and the operator's
at the pinned versions (infra/monitoring_names.py). The model services admit Prometheus through
their own policy (infra/model_service.py: ingress on the service port from platform namespaces, which
this namespace is).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi_kubernetes as k8s

from infra.model_service import PORT as MODEL_SERVICE_PORT
from infra.monitoring_names import (
    ALERTMANAGER_MESH_PORT,
    ALERTMANAGER_POD,
    ALERTMANAGER_PORT,
    CONFIG_RELOADER_PORT,
    DCGM_EXPORTER_POD,
    DCGM_EXPORTER_PORT,
    GRAFANA_POD,
    GRAFANA_PORT,
    KUBE_STATE_METRICS_POD,
    KUBE_STATE_METRICS_PORT,
    NAME_LABEL,
    OPERATOR_POD,
    OPERATOR_PORT,
    PROMETHEUS_POD,
    PROMETHEUS_PORT,
    PUSHGATEWAY_POD,
    PUSHGATEWAY_PORT,
    SYSTEM_NAMESPACE,
)
from infra.network_rules import (
    both_ways,
    deny_all,
    dns_egress,
    https_egress,
    labelled_pods,
    platform_namespaces,
    tcp_ports,
)

NetworkPolicySpec = k8s.networking.v1.NetworkPolicySpecArgs
Ingress = k8s.networking.v1.NetworkPolicyIngressRuleArgs
Egress = k8s.networking.v1.NetworkPolicyEgressRuleArgs
Peer = k8s.networking.v1.NetworkPolicyPeerArgs


_tcp = tcp_ports


def _pods(name: str) -> Peer:
    """Pods of this namespace with that `app.kubernetes.io/name`."""
    return Peer(pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: name}))


def _spec(pod: str, ingress: Sequence[Ingress], egress: Sequence[Egress]) -> NetworkPolicySpec:
    return both_ways({NAME_LABEL: pod}, ingress, egress)


def _scraped_by_prometheus(*ports: int) -> Ingress:
    return Ingress(from_=[_pods(PROMETHEUS_POD)], ports=_tcp(*ports))


def prometheus(models_namespace: str, gpu_exporters: bool = False) -> NetworkPolicySpec:
    """In: its UI and API from the platform namespaces (as MLflow's and KEDA's scaler), its reloader
    from itself.

    Out: the model services' port in the models namespace (the scrape), this namespace's exporters
    and Pushgateway, Alertmanager, the DCGM exporters where the stack has GPU pools (infra/gpu_metrics.py), and the
    Kubernetes API (service discovery, over 443).
    """
    models = Peer(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": models_namespace})
    )
    exporters = labelled_pods({NAME_LABEL: DCGM_EXPORTER_POD}, SYSTEM_NAMESPACE)
    gpus = [Egress(to=[exporters], ports=_tcp(DCGM_EXPORTER_PORT))]
    in_namespace = [
        Egress(to=[_pods(PROMETHEUS_POD)], ports=_tcp(PROMETHEUS_PORT, CONFIG_RELOADER_PORT)),
        Egress(to=[_pods(ALERTMANAGER_POD)], ports=_tcp(ALERTMANAGER_PORT, CONFIG_RELOADER_PORT)),
        Egress(to=[_pods(KUBE_STATE_METRICS_POD)], ports=_tcp(KUBE_STATE_METRICS_PORT)),
        Egress(to=[_pods(OPERATOR_POD)], ports=_tcp(OPERATOR_PORT)),
        Egress(to=[_pods(GRAFANA_POD)], ports=_tcp(GRAFANA_PORT)),
        Egress(to=[_pods(PUSHGATEWAY_POD)], ports=_tcp(PUSHGATEWAY_PORT)),
    ]
    return _spec(
        PROMETHEUS_POD,
        ingress=[
            Ingress(from_=[platform_namespaces()], ports=_tcp(PROMETHEUS_PORT)),
            _scraped_by_prometheus(CONFIG_RELOADER_PORT),
        ],
        egress=[
            dns_egress(),
            Egress(to=[models], ports=_tcp(MODEL_SERVICE_PORT)),
            *(gpus if gpu_exporters else []),
            *in_namespace,
            https_egress(),
        ],
    )


def alertmanager() -> NetworkPolicySpec:
    """In: alerts from Prometheus, queries from Grafana, its replicas' gossip. Out: DNS and HTTPS (the webhook)."""
    mesh = [
        *_tcp(ALERTMANAGER_MESH_PORT),
        k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=ALERTMANAGER_MESH_PORT),
    ]
    return _spec(
        ALERTMANAGER_POD,
        ingress=[
            Ingress(from_=[_pods(PROMETHEUS_POD), _pods(GRAFANA_POD)], ports=_tcp(ALERTMANAGER_PORT)),
            _scraped_by_prometheus(CONFIG_RELOADER_PORT),
            Ingress(from_=[_pods(ALERTMANAGER_POD)], ports=mesh),
        ],
        egress=[dns_egress(), Egress(to=[_pods(ALERTMANAGER_POD)], ports=mesh), https_egress()],
    )


def grafana(vpc_cidr: str, internal_ingress: bool) -> NetworkPolicySpec:
    """In: from where the MLflow UI is reachable (platform namespaces, and the VPC's internal load
    balancer where the stack has one). Out: its datasources, and the Kubernetes API for the sidecar."""
    vpc = Peer(ip_block=k8s.networking.v1.IPBlockArgs(cidr=vpc_cidr))
    return _spec(
        GRAFANA_POD,
        ingress=[
            Ingress(from_=[platform_namespaces(), *([vpc] if internal_ingress else [])], ports=_tcp(GRAFANA_PORT))
        ],
        egress=[
            dns_egress(),
            Egress(to=[_pods(PROMETHEUS_POD)], ports=_tcp(PROMETHEUS_PORT)),
            Egress(to=[_pods(ALERTMANAGER_POD)], ports=_tcp(ALERTMANAGER_PORT)),
            https_egress(),
        ],
    )


def exporter(pod: str, port: int) -> NetworkPolicySpec:
    """kube-state-metrics and the operator: scraped by Prometheus; out to the Kubernetes API only."""
    return _spec(pod, ingress=[_scraped_by_prometheus(port)], egress=[dns_egress(), https_egress()])


def monitoring_policies(
    models_namespace: str, vpc_cidr: str, internal_ingress: bool, gpu_exporters: bool = False
) -> dict[str, NetworkPolicySpec]:
    """Policy name -> spec, for every pod the chart runs with these values."""
    return {
        "default-deny": deny_all(),
        PROMETHEUS_POD: prometheus(models_namespace, gpu_exporters),
        ALERTMANAGER_POD: alertmanager(),
        GRAFANA_POD: grafana(vpc_cidr, internal_ingress),
        KUBE_STATE_METRICS_POD: exporter(KUBE_STATE_METRICS_POD, KUBE_STATE_METRICS_PORT),
        "prometheus-operator": exporter(OPERATOR_POD, OPERATOR_PORT),
    }
