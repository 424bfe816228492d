"""The Pushgateway of one environment: where the daily jobs push their results for Prometheus to scrape.

Why a Pushgateway is the mechanism: monitoring/job_metrics.py. Here the chart, pinned and hardened,
and its NetworkPolicy: the daily job pods of the models namespace may reach it (they push; selected
by `DAILY_JOB_POD_LABEL`, infra/monitoring_job.py), Prometheus may (it scrapes); nothing else. Both
use its one port, so a policy cannot tell a push from a scrape: a job pod could also read what
others pushed, results that are on the dashboards anyway.

Facts the values rely on, read in prometheus-community/helm-charts `charts/prometheus-pushgateway` at
chart version 3.8.0 (commit 4fa56e1c264a2a7e8030af068dcccd4400dd620c; app v1.11.3):

- `fullnameOverride` names the Deployment and Service (`_helpers.tpl` fullname); the pods carry
  `app.kubernetes.io/name: prometheus-pushgateway`, the chart's name (`selectorLabels`); container
  port 9091, Service port 9091 named `http` (`values.yaml` service, `_helpers.tpl` podSpec).
- `serviceMonitor.enabled` renders a ServiceMonitor in `serviceMonitor.namespace` selecting the
  Service by those labels, with `honorLabels` (default true), so the pushed `job` and `model` are
  kept (`templates/servicemonitor.yaml`); the stack's Prometheus selects every ServiceMonitor of the
  monitoring namespace (infra/monitoring_values.py).
- `containerSecurityContext` and `resources` default to empty, the pod's `securityContext` to uid
  65534 non-root; `automountServiceAccountToken` defaults to true; without `persistentVolume` the
  storage volume is an emptyDir and nothing is written (no `--persistence.file` among the args);
  `networkPolicy: {}` renders none (`values.yaml`, `templates/networkpolicy.yaml`).

What is pushed lives in memory: a restart loses it until each job's next run, which the dashboards
show as a gap; the alerts on it (ModelAccuracyDegraded) then stay quiet rather than fire on old data.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster_addons import HelmChart
from infra.monitoring_job import DAILY_JOB_POD_LABEL
from infra.monitoring_names import (
    NAME_LABEL,
    NAMESPACE,
    PROMETHEUS_POD,
    PUSHGATEWAY_NAME,
    PUSHGATEWAY_POD,
    PUSHGATEWAY_PORT,
)
from infra.monitoring_values import CONTAINER_SECURITY, NOBODY_POD_SECURITY, resources
from infra.network_rules import dns_egress

PROMETHEUS_PUSHGATEWAY = HelmChart(
    "prometheus-pushgateway", "3.8.0", "https://prometheus-community.github.io/helm-charts"
)


def pushgateway_values() -> dict[str, Any]:
    return {
        "fullnameOverride": PUSHGATEWAY_NAME,
        "service": {"type": "ClusterIP", "port": PUSHGATEWAY_PORT},
        # It calls no Kubernetes API.
        "automountServiceAccountToken": False,
        "securityContext": NOBODY_POD_SECURITY,  # the chart's uid 65534, written out
        "containerSecurityContext": CONTAINER_SECURITY,
        "resources": resources("10m", "32Mi", "100m", "64Mi"),
        "persistentVolume": {"enabled": False},
        "serviceMonitor": {"enabled": True, "namespace": NAMESPACE, "honorLabels": True, "interval": "30s"},
    }


def pushgateway_policy(models_namespace: str) -> k8s.networking.v1.NetworkPolicySpecArgs:
    """In: Prometheus (scrapes) and the daily job pods of the models namespace (push). Out: DNS only.

    The job pods by their shared label, not by name: a new model's jobs are admitted without this
    policy changing (a catalogue change touches only the model's own objects)."""
    port = [k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PUSHGATEWAY_PORT)]
    prometheus = k8s.networking.v1.NetworkPolicyPeerArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: PROMETHEUS_POD})
    )
    daily_jobs = k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=k8s.meta.v1.LabelSelectorArgs(
            match_labels={"kubernetes.io/metadata.name": models_namespace}
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=DAILY_JOB_POD_LABEL),
    )
    return k8s.networking.v1.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: PUSHGATEWAY_POD}),
        policy_types=["Ingress", "Egress"],
        ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[prometheus, daily_jobs], ports=port)],
        egress=[dns_egress()],
    )


def declare_pushgateway(name: str, models_namespace: str, labels: dict[str, str], opts: pulumi.ResourceOptions) -> None:
    """The release (after the stack's, whose CRDs its ServiceMonitor needs) and its NetworkPolicy."""
    PROMETHEUS_PUSHGATEWAY.release(f"{name}-pushgateway", NAMESPACE, pushgateway_values(), opts, PUSHGATEWAY_NAME)
    k8s.networking.v1.NetworkPolicy(
        f"{name}-network-policy-pushgateway",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=PUSHGATEWAY_POD, namespace=NAMESPACE, labels=labels),
        spec=pushgateway_policy(models_namespace),
        opts=opts,
    )
