"""Names, pod labels and ports of the monitoring stack, shared by its values, policies and clients.

Each pod label and port is what the chart or the operator sets at the pinned versions (the facts
table in infra/monitoring_values.py): the NetworkPolicies select by them, so a wrong one would
silently admit nothing.
"""

from __future__ import annotations

NAMESPACE = "monitoring"
RELEASE_NAME = "kube-prometheus-stack"
"""The Helm release name, fixed (Pulumi would otherwise add a random suffix)."""
STACK_FULLNAME = "monitoring"
"""The chart's `fullnameOverride`: Services `monitoring-prometheus`, `monitoring-alertmanager`."""
GRAFANA_NAME = "grafana"
"""The Grafana subchart's `fullnameOverride`: its Deployment and Service are `grafana`."""
ALERTMANAGER_SERVICE_ACCOUNT = "monitoring-alertmanager"
"""The chart's default `<fullname>-alertmanager`, set explicitly: Alertmanager's IRSA role trusts it."""
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER_KEY = "admin-user"
GRAFANA_ADMIN_PASSWORD_KEY = "admin-password"

NAME_LABEL = "app.kubernetes.io/name"
PROMETHEUS_POD = "prometheus"
ALERTMANAGER_POD = "alertmanager"
GRAFANA_POD = "grafana"
KUBE_STATE_METRICS_POD = "kube-state-metrics"
OPERATOR_POD = f"{RELEASE_NAME}-prometheus-operator"
"""`<chart name>-prometheus-operator`: the chart names it after the chart, not the fullname."""

PROMETHEUS_PORT = 9090
CONFIG_RELOADER_PORT = 8080
ALERTMANAGER_PORT = 9093
ALERTMANAGER_MESH_PORT = 9094
GRAFANA_PORT = 3000
GRAFANA_SERVICE_PORT = 80
KUBE_STATE_METRICS_PORT = 8080
OPERATOR_PORT = 8080

DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
"""The label Grafana's dashboard sidecar loads ConfigMaps by (the values set both, see the facts)."""

PUSHGATEWAY_NAME = "pushgateway"
"""The Pushgateway release and its `fullnameOverride`: Deployment and Service `pushgateway`."""
PUSHGATEWAY_POD = "prometheus-pushgateway"
"""Its pods' `app.kubernetes.io/name`: the chart's name (infra/pushgateway.py)."""
PUSHGATEWAY_PORT = 9091
PUSHGATEWAY_URL = f"http://{PUSHGATEWAY_NAME}.{NAMESPACE}.svc.cluster.local:{PUSHGATEWAY_PORT}"
"""What the daily jobs get as MLOPS_PUSHGATEWAY_URL."""
SYSTEM_NAMESPACE = "kube-system"
DCGM_EXPORTER_POD = "dcgm-exporter"
"""The DCGM exporter's pods in kube-system (infra/gpu_metrics.py, the chart's selector label)."""
DCGM_EXPORTER_PORT = 9400
