"""The values the platform gives the kube-prometheus-stack chart, and the upstream facts they rest on.

Under mocks a Helm release is one opaque resource: the plan shows these values, never what the chart
makes of them. So every value below was checked against the chart's templates and the operator's
source at the pinned versions. The facts relied on, each with where it was read
(kube-prometheus-stack 88.3.0 = "the chart", prometheus-operator v0.93.0 = "the operator"):

- A nil or `{}` `serviceMonitorSelector` with `serviceMonitorSelectorNilUsesHelmValues: false` renders
  `serviceMonitorSelector: {}` (every ServiceMonitor), likewise `ruleSelector`; a non-empty namespace
  selector is passed through as given (the chart, `templates/prometheus/prometheus.yaml`).
- The operator gives its Prometheus, Alertmanager and config-reloader containers
  `readOnlyRootFilesystem: true`, `allowPrivilegeEscalation: false` and capabilities `drop: [ALL]`
  (the operator, `pkg/prometheus/server/statefulset.go`, `pkg/alertmanager/statefulset.go`,
  `pkg/operator/config_reloader.go`); the pod security contexts come from these values.
- The config-reloader's requests and limits are `prometheusOperator.prometheusConfigReloader.resources`,
  passed as the operator's `--config-reloader-*` flags (the chart, `templates/prometheus-operator/deployment.yaml`).
- With `prometheusOperator.tls.enabled` the operator mounts Secret `<fullname>-admission`, which only the
  admission webhooks' certificate Job (or cert-manager) creates: webhooks off needs TLS off (same file).
- Pod labels and ports (infra/monitoring_names.py): Prometheus `app.kubernetes.io/name: prometheus`
  (9090, reloader 8080) and Alertmanager `app.kubernetes.io/name: alertmanager` (9093, mesh 9094) from
  the operator (`pkg/prometheus/server/operator.go` makeSelectorLabels, `pkg/alertmanager/operator.go`,
  `pkg/alertmanager/statefulset.go`); the operator's own pods
  `app.kubernetes.io/name: <chart name>-prometheus-operator`, 8080 without TLS (the chart,
  `templates/prometheus-operator/_prometheus-operator.tpl`).
- Grafana (chart 12.10.4, the chart's dependency): pods `app.kubernetes.io/name: grafana`, container
  port 3000, Service port 80; `admin.existingSecret` stops the chart creating its own admin Secret; its
  default container security context has no read-only root; `initChownData` runs as root, and only with
  persistence (`values.yaml`, `templates/_helpers.tpl`, `templates/_pod.tpl`, `templates/secret.yaml`).
- Grafana's dashboard sidecar (chart 12.10.4, Grafana 13.1.3, read in grafana-community/helm-charts
  `charts/grafana/values.yaml` and `templates/_pod.tpl`): `sidecar.dashboards.enabled` defaults to false,
  `label` to `grafana_dashboard`, `labelValue` to "" (any value) and `searchNamespace` to null, which
  leaves the sidecar's NAMESPACE unset, so it watches only its own namespace; a list is joined with ",".
  The chart overrides them to enabled, `grafana_dashboard`, "1" and `ALL`, and provisions the Prometheus
  datasource with uid `prometheus` (the chart's `values.yaml`, `grafana.sidecar`).
- kube-state-metrics (chart 8.2.0): pods `app.kubernetes.io/name: kube-state-metrics`, port 8080,
  uid 65534 with a read-only root by default; the chart scrapes it with `honorLabels: true`, so its
  `namespace` label stays the object's namespace, which the rules select on (the chart's `values.yaml`,
  `kube-state-metrics.prometheus.monitor.http.honorLabels`).
- Alertmanager's ServiceAccount: `alertmanager.serviceAccount.{create,name,annotations}`, default name
  `<fullname>-alertmanager`, used by the Alertmanager object (the chart, `templates/_helpers.tpl`
  `alertmanager.serviceAccountName`, `templates/alertmanager/serviceaccount.yaml`); the image is
  Alertmanager v0.33.1 (`alertmanager.alertmanagerSpec.image`).
- Helm merges maps in values but replaces lists, so `alertmanager.config` is given whole: none of the
  chart's defaults (critical/warning inhibitions, the Watchdog route) survive (the chart's `values.yaml`).
- An AlertmanagerConfig whose Secret reference is missing is skipped with a warning event, and the rest
  of the configuration applies; `alertmanagerConfigMatcherStrategy: None` lets its route see every alert
  (the operator, `pkg/alertmanager/operator.go` selectAlertmanagerConfigs,
  `pkg/apis/monitoring/v1/alertmanager_types.go`).
- The CRDs (`monitoring.coreos.com`: ServiceMonitor v1, PrometheusRule v1, AlertmanagerConfig v1alpha1)
  ship in the `crds` subchart's `crds/` directory: Helm installs them with the release and never
  upgrades them; `crds.upgradeJob` is off by default (the chart, `charts/crds/`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.alert_routing import alertmanager_config
from infra.config import MonitoringConfig
from infra.monitoring_names import (
    ALERTMANAGER_SERVICE_ACCOUNT,
    DASHBOARD_LABEL,
    DASHBOARD_LABEL_VALUE,
    GRAFANA_ADMIN_PASSWORD_KEY,
    GRAFANA_ADMIN_USER_KEY,
    GRAFANA_NAME,
    STACK_FULLNAME,
)


def _restricted_pod(uid: int, gid: int) -> dict[str, Any]:
    """A chart pod's securityContext (values): non-root as `uid`/`gid`, the runtime's seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "fsGroup": gid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# Chart defaults kept on purpose, written out so the plan shows them (pod security contexts of
# Prometheus and Alertmanager: uid 1000, gid 2000; the operator's: 65534).
_PROMETHEUS_POD_SECURITY = _restricted_pod(uid=1000, gid=2000)
NOBODY_POD_SECURITY = _restricted_pod(uid=65534, gid=65534)
_GRAFANA_POD_SECURITY = _restricted_pod(uid=472, gid=472)
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""Every container the chart renders from values gets this (the operator sets its own pods')."""

# Which share of the volume Prometheus may fill before it deletes its oldest blocks: a full volume
# stops ingestion altogether, so the size limit must bite before the disk does.
RETENTION_SIZE_SHARE = 0.85

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
SCRAPE_INTERVAL = "30s"
EVALUATION_INTERVAL = "30s"


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, dict[str, str]]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}}


@dataclass(frozen=True)
class MonitoringValuesArgs:
    prometheus: MonitoringConfig
    storage_class: str
    namespace: str
    """The stack's own namespace (its ServiceMonitors: the operator, kube-state-metrics, ...)."""
    models_namespace: str
    """Where the models' ServiceMonitors, PrometheusRules and AlertmanagerConfig live."""
    grafana_admin_secret: str
    alertmanager_role_arn: pulumi.Input[str] | None = None
    """Alertmanager's IRSA role (publishes to the alert topic); None: its ServiceAccount carries none."""


def chart_values(args: MonitoringValuesArgs) -> dict[str, Any]:
    return {
        "fullnameOverride": STACK_FULLNAME,
        # The chart's own rules are written for severities critical/warning and, many of them, for
        # node-exporter and control-plane endpoints EKS does not expose; the platform's alerts are the
        # per-model rules (observability/rules.py), routed by severity page/ticket.
        "defaultRules": {"create": False},
        # node-exporter needs hostNetwork, hostPID and host paths, which the namespace's `restricted`
        # Pod Security refuses; the kubelet and control-plane scrapes need node and API-server egress no
        # rule reads yet. Later slices that need them enable them with their NetworkPolicies.
        "nodeExporter": {"enabled": False},
        "kubelet": {"enabled": False},
        "kubeApiServer": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "coreDns": {"enabled": False},
        "kubeDns": {"enabled": False},
        "prometheusOperator": _operator_values(),
        "prometheus": {"prometheusSpec": _prometheus_spec(args)},
        "alertmanager": _alertmanager_values(args),
        "grafana": _grafana_values(args),
        "kube-state-metrics": _kube_state_metrics_values(),
    }


def _operator_values() -> dict[str, Any]:
    return {
        # The webhooks would only validate PrometheusRules and AlertmanagerConfigs, which tests/observability
        # checks with promtool before an object exists; they cost a cluster-scoped cert Job and an
        # API-server-to-pod path. Without them the operator has no certificate to serve TLS with.
        "admissionWebhooks": {"enabled": False},
        "tls": {"enabled": False},
        "resources": resources("50m", "128Mi", "500m", "256Mi"),
        "securityContext": NOBODY_POD_SECURITY,
        "containerSecurityContext": CONTAINER_SECURITY,
        "prometheusConfigReloader": {"resources": resources("10m", "32Mi", "100m", "64Mi")},
    }


def _namespaces_selector(namespaces: tuple[str, ...]) -> dict[str, Any]:
    """By the name label Kubernetes sets on every namespace."""
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": list(namespaces)}]}


def _prometheus_spec(args: MonitoringValuesArgs) -> dict[str, Any]:
    watched = _namespaces_selector((args.namespace, args.models_namespace))
    return {
        # Every ServiceMonitor and PrometheusRule, but only in the namespaces the platform owns: the
        # models' objects carry no Helm release label, and nothing elsewhere is picked up.
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "serviceMonitorNamespaceSelector": watched,
        "ruleSelectorNilUsesHelmValues": False,
        "ruleNamespaceSelector": watched,
        "scrapeInterval": SCRAPE_INTERVAL,
        "evaluationInterval": EVALUATION_INTERVAL,
        "retention": f"{args.prometheus.prometheus_retention_days}d",
        "retentionSize": f"{int(args.prometheus.prometheus_storage_gib * RETENTION_SIZE_SHARE)}GiB",
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": args.storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{args.prometheus.prometheus_storage_gib}Gi"}},
                }
            }
        },
        "resources": resources("250m", "1Gi", "1", "2Gi"),
        "securityContext": _PROMETHEUS_POD_SECURITY,
    }


def _alertmanager_values(args: MonitoringValuesArgs) -> dict[str, Any]:
    role = {"eks.amazonaws.com/role-arn": args.alertmanager_role_arn} if args.alertmanager_role_arn else {}
    return {
        "config": alertmanager_config(),
        "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT, "annotations": role},
        "alertmanagerSpec": {
            # The models' routes and receivers: AlertmanagerConfig objects in the models namespace, whose
            # Secret references (the drift alerts' webhook) the operator resolves there.
            "alertmanagerConfigSelector": {},
            "alertmanagerConfigNamespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: args.models_namespace}},
            # The model rules' alerts carry `model`, not `namespace` (their expressions aggregate it away).
            "alertmanagerConfigMatcherStrategy": {"type": "None"},
            "resources": resources("10m", "64Mi", "200m", "128Mi"),
            "securityContext": _PROMETHEUS_POD_SECURITY,
        },
    }


def _grafana_values(args: MonitoringValuesArgs) -> dict[str, Any]:
    sidecar_resources = resources("10m", "64Mi", "100m", "128Mi")
    return {
        "fullnameOverride": GRAFANA_NAME,
        "admin": {
            "existingSecret": args.grafana_admin_secret,
            "userKey": GRAFANA_ADMIN_USER_KEY,
            "passwordKey": GRAFANA_ADMIN_PASSWORD_KEY,
        },
        "service": {"type": "ClusterIP", "port": 80, "portName": "http-web"},
        "resources": resources("50m", "256Mi", "500m", "512Mi"),
        "securityContext": _GRAFANA_POD_SECURITY,
        "containerSecurityContext": CONTAINER_SECURITY,
        # Writable places on a read-only root: /var/lib/grafana is the chart's `storage` emptyDir.
        "extraEmptyDirMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "logs", "mountPath": "/var/log/grafana"},
        ],
        "persistence": {"enabled": False},
        "initChownData": {"enabled": False},
        "testFramework": {"enabled": False},
        # The chart's own dashboards read node-exporter, kubelet and control-plane series, all off here;
        # the platform's are ConfigMaps (infra/grafana_dashboards.py) the sidecar loads.
        "defaultDashboardsEnabled": False,
        "sidecar": {
            "resources": sidecar_resources,
            "securityContext": CONTAINER_SECURITY,
            "dashboards": {
                "enabled": True,
                "label": DASHBOARD_LABEL,
                "labelValue": DASHBOARD_LABEL_VALUE,
                # Not the chart's ALL: the dashboards live in the stack's namespace, and nothing elsewhere
                # should be able to put a dashboard (and its queries) in front of the operators.
                "searchNamespace": [args.namespace],
                "resource": "configmap",
            },
            "datasources": {"enabled": True},
        },
        "grafana.ini": {"analytics": {"check_for_updates": False, "reporting_enabled": False}},
    }


def _kube_state_metrics_values() -> dict[str, Any]:
    # The rules' replica and drift-job alerts read its deployment and cronjob series.
    return {
        "resources": resources("10m", "64Mi", "200m", "256Mi"),
        "securityContext": {"enabled": True, **NOBODY_POD_SECURITY},
        "containerSecurityContext": CONTAINER_SECURITY,
    }
