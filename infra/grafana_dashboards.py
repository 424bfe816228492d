"""A Grafana dashboard as a ConfigMap the chart's dashboard sidecar loads.

The sidecar (enabled in infra/monitoring_values.py) watches ConfigMaps in the monitoring namespace
carrying DASHBOARD_LABEL=DASHBOARD_LABEL_VALUE and writes each data key as a file Grafana's
provisioning reads; the file name is the key, so one dashboard per ConfigMap, under its uid.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.monitoring_names import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE, NAMESPACE
from observability.dashboards import dashboard_json


def dashboard_config_map(
    resource_name: str, dashboard: dict[str, Any], labels: dict[str, str], opts: pulumi.ResourceOptions
) -> k8s.core.v1.ConfigMap:
    uid = dashboard["uid"]
    return k8s.core.v1.ConfigMap(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"dashboard-{uid}", namespace=NAMESPACE, labels={**labels, DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE}
        ),
        data={f"{uid}.json": dashboard_json(dashboard)},
        opts=opts,
    )
