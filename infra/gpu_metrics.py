"""GPU utilisation and memory per pod from NVIDIA's DCGM exporter, on the GPU pools' nodes only.

A stack with a GPU pool gets the pinned dcgm-exporter chart (a DaemonSet that runs where the pools'
taint is tolerated and their label selects), a NetworkPolicy that lets only Prometheus reach it, and
a ServiceMonitor of ours in the monitoring namespace (the chart's is off: ours is a plan object the
strict schema checks, and Prometheus then needs to watch no further namespace for monitors).

Why in kube-system, and what it is allowed: the exporter reads the GPUs through DCGM and maps each
GPU to the pod holding it through the kubelet's pod-resources socket, a hostPath (read only) owned by
root. The chart runs it as root for that; hostPath and root are what the `restricted` (and even
`baseline`) Pod Security level refuses, so it cannot run in a platform namespace. kube-system, where
the NVIDIA device plugin already runs with host access to the same GPUs, enforces no Pod Security
level; the exception stays that narrow:
- root and the pod-resources hostPath (read only), which per-pod attribution needs;
- NOT the chart's `SYS_ADMIN` capability: it serves only the profiling fields (`DCGM_FI_PROF_*`), which
  the counters below leave out (capabilities: drop ALL, add none); no privilege escalation;
- no Kubernetes API access (pod labels off, so the chart mounts no service-account token), no egress.

Facts relied on, read at NVIDIA/dcgm-exporter tag 4.5.3-4.8.2 (chart 4.8.2, image 4.5.3-4.8.2,
`deployment/values.yaml` and `deployment/templates/`):
- values `securityContext` (root, `SYS_ADMIN` "Required for profiling metrics (DCGM_FI_PROF_*)"),
  `nodeSelector`, `tolerations` (the default tolerates only the control plane's taint), `resources`
  (requests 100m/128Mi, limits 200m/512Mi), `serviceMonitor.enabled` (true by default),
  `customMetrics` (replaces the counters file the chart's ConfigMap carries), `kubeletPath`;
- the DaemonSet mounts `kubeletPath` read-only, sets `automountServiceAccountToken` only with pod
  labels or DRA, and serves `/metrics` on container and Service port 9400 named `metrics`;
- pods and Service select `app.kubernetes.io/name: dcgm-exporter` (`_helpers.tpl` selectorLabels);
- series carry the GPU's pod as `namespace`, `pod`, `container`: the ServiceMonitor honours them
  (`honorLabels`), or Prometheus would rename them `exported_*` for its own target labels;
- Prometheus may discover the exporter's endpoints in kube-system: kube-prometheus-stack 88.3.0 gives it
  a ClusterRole to get/list/watch services, endpoints, endpointslices and pods in every namespace
  (`templates/prometheus/clusterrole.yaml`); only the ServiceMonitor objects are namespace-selected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster_addons import HelmChart
from infra.model_monitoring import MONITORING_API
from infra.monitoring_names import (
    DCGM_EXPORTER_POD,
    DCGM_EXPORTER_PORT,
    NAME_LABEL,
    PROMETHEUS_POD,
    SYSTEM_NAMESPACE,
)
from infra.monitoring_names import NAMESPACE as MONITORING_NAMESPACE
from infra.network_rules import both_ways, labelled_pods, tcp_ports
from infra.node_pool import GPU_TAINT_KEY
from observability import metrics

DCGM_EXPORTER = HelmChart("dcgm-exporter", "4.8.2", "https://nvidia.github.io/dcgm-exporter/helm-charts")
EXPORTER_NAME = DCGM_EXPORTER_POD
EXPORTER_PORT = DCGM_EXPORTER_PORT
EXPORTER_PORT_NAME = "metrics"
LABELS = {NAME_LABEL: EXPORTER_NAME, "app.kubernetes.io/part-of": "mlops-platform"}
GPU_NODE_LABEL = {"nvidia.com/gpu.present": "true"}
"""Every GPU pool's nodes carry it (infra/node_pool.py); the device plugin selects them by it too."""
SCRAPE_INTERVAL = "30s"

# The counters the exporter collects (DCGM field, Prometheus type, help): what the dashboards read, and
# what tells an operator a GPU is failing (temperature, power, XID errors); no DCGM_FI_PROF_* field.
_COUNTERS = (
    (metrics.GPU_UTILIZATION.name, "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    (metrics.GPU_MEMORY_USED.name, "gauge", "Framebuffer memory used (in MiB)."),
    (metrics.GPU_MEMORY_FREE.name, "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
)


def counters_csv() -> str:
    return "".join(f"{name}, {kind}, {description}\n" for name, kind, description in _COUNTERS)


def chart_values() -> dict[str, Any]:
    return {
        "fullnameOverride": EXPORTER_NAME,
        "nodeSelector": GPU_NODE_LABEL,
        "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "securityContext": {
            # Root for the kubelet's pod-resources socket and the GPU devices (module docstring).
            "runAsNonRoot": False,
            "runAsUser": 0,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "512Mi"}},
        "customMetrics": counters_csv(),
        "serviceMonitor": {"enabled": False},
        "kubernetes": {"enablePodLabels": False, "enablePodUID": False},
    }


def service_monitor_spec() -> dict[str, Any]:
    return {
        "selector": {"matchLabels": {NAME_LABEL: EXPORTER_NAME}},
        "namespaceSelector": {"matchNames": [SYSTEM_NAMESPACE]},
        "endpoints": [
            {
                "port": EXPORTER_PORT_NAME,
                "path": "/metrics",
                "scheme": "http",
                "interval": SCRAPE_INTERVAL,
                "scrapeTimeout": "10s",
                "honorLabels": True,
            }
        ],
    }


def network_policy_spec() -> k8s.networking.v1.NetworkPolicySpecArgs:
    """In: Prometheus' scrape only. Out: nothing (DCGM runs in the pod; the socket is a host path)."""
    prometheus = labelled_pods({NAME_LABEL: PROMETHEUS_POD}, MONITORING_NAMESPACE)
    scrape = k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[prometheus], ports=tcp_ports(EXPORTER_PORT))
    return both_ways({NAME_LABEL: EXPORTER_NAME}, ingress=[scrape], egress=[])


@dataclass(frozen=True)
class GpuMetricsArgs:
    monitoring: pulumi.Resource
    """The monitoring stack: its release installs the ServiceMonitor CRD."""
    install_after: tuple[pulumi.Resource, ...] = field(default_factory=tuple)
    """The add-ons: the load balancer controller's webhook must answer before the chart's Service exists."""


class GpuMetrics(pulumi.ComponentResource):
    """The pinned DCGM exporter on the GPU pools, its NetworkPolicy, and the ServiceMonitor that scrapes it."""

    def __init__(self, name: str, args: GpuMetricsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:GpuMetrics", name, None, opts)
        DCGM_EXPORTER.release(
            f"{name}-release",
            SYSTEM_NAMESPACE,
            chart_values(),
            pulumi.ResourceOptions(parent=self, depends_on=list(args.install_after)),
            release_name=EXPORTER_NAME,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EXPORTER_NAME, namespace=SYSTEM_NAMESPACE, labels=LABELS),
            spec=network_policy_spec(),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=EXPORTER_NAME, namespace=MONITORING_NAMESPACE, labels=LABELS),
            spec=service_monitor_spec(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.monitoring]),
        )
        self.register_outputs({"chart": DCGM_EXPORTER.version})
