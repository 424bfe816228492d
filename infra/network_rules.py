"""NetworkPolicy building blocks the platform's workloads share, so each policy reads as intent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi_kubernetes as k8s

from infra.pod_security import PLATFORM_LABEL, PLATFORM_LABEL_VALUE

TRACKING_PORT = 5000
PIPELINES_API_PORT = 8888


def egress_only(
    pod_labels: Mapping[str, str], egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs]
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """For pods that serve nothing (jobs): no traffic in, and out only by the `egress` rules."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pod_labels)),
        policy_types=["Ingress", "Egress"],
        ingress=[],
        egress=list(egress),
    )


def tcp_ports(*ports: int) -> list[k8s.networking.v1.NetworkPolicyPortArgs]:
    return [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port) for port in ports]


def labelled_pods(labels: Mapping[str, str], namespace: str | None = None) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """Pods with `labels`, in the policy's own namespace or, given one, in `namespace`."""
    in_namespace = (
        k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace}) if namespace else None
    )
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=in_namespace, pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels))
    )


def both_ways(
    pod_labels: Mapping[str, str],
    ingress: Sequence[k8s.networking.v1.NetworkPolicyIngressRuleArgs],
    egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs],
) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """For the pods with `pod_labels`: traffic in and out only by the rules given."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(pod_labels)),
        policy_types=["Ingress", "Egress"],
        ingress=list(ingress),
        egress=list(egress),
    )


def deny_all() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """Anything in the namespace not selected by another policy gets no traffic at all."""
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"], ingress=[], egress=[]
    )


def dns_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=53) for protocol in ("UDP", "TCP")]
    )


def https_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """AWS APIs (S3 through the gateway endpoint, STS, Secrets Manager, SNS) and webhooks, over TLS."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=443)]
    )


def tracking_egress(tracking_namespace: str) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return _namespace_egress(tracking_namespace, TRACKING_PORT)


def pipelines_api_egress(pipelines_namespace: str) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    return _namespace_egress(pipelines_namespace, PIPELINES_API_PORT)


def _namespace_egress(namespace: str, port: int) -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """To one TCP port of the pods in one namespace (selected by the label Kubernetes sets on it)."""
    in_namespace = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
    )
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[in_namespace], ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=port)]
    )


def platform_namespaces() -> k8s.networking.v1.NetworkPolicyPeerArgs:
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={PLATFORM_LABEL: PLATFORM_LABEL_VALUE})
    )


# Pods that call AWS keep the service-account token mounted: the EKS pod identity webhook builds the
# IRSA web-identity token from it. Their ServiceAccounts have no RBAC bindings.
IRSA_TOKEN_SKIP = {
    "checkov.io/skip1": "CKV_K8S_38=IRSA web identity needs the projected service account token;"
    " the ServiceAccount has no RBAC bindings"
}

# MLflow's client reads its credentials only from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD:
# they come from a Secret through secretKeyRef (never literals), but cannot be files.
TRACKING_CREDENTIALS_SKIP = {
    "checkov.io/skip2": "CKV_K8S_35=MLflow's client reads its credentials only from environment variables;"
    " they come from a Secret through secretKeyRef"
}
