"""One model's monitoring objects: the scrape of its service, its service-level rules, its dashboard.

Both are custom resources of the prometheus-operator (monitoring.coreos.com/v1, CRDs from the
monitoring stack's release, which they wait for). What they must produce is fixed by the rules
(observability/targets.py): the service's series under `job="serve-<model>"`, with BentoML's own
`endpoint` label (the route) intact.

At prometheus-operator v0.93.0 (`pkg/prometheus/promcfg.go`, generateServiceMonitorConfig) a
ServiceMonitor's targets get `job` = the Kubernetes Service's name unless `jobLabel` is set, so no
`jobLabel` here; and they get a target label `endpoint` = the port's name, which would displace the
scraped `endpoint` into `exported_endpoint` and leave the rules' route matchers matching nothing,
unless `honorLabels` is true. BentoML's series carry `endpoint`, `http_response_code`,
`service_name` and `service_version` (observability/metrics.py), none of job, namespace, service,
pod or container, so honouring its labels keeps the route and takes nothing else from the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.grafana_dashboards import dashboard_config_map
from infra.hardened_workload import HTTP_PORT_NAME
from infra.shared_services import SharedServices, model_labels
from observability.dashboards import model_dashboard
from observability.rules import model_rule_group
from observability.targets import ModelTargets
from workloads.catalogue_entry import CatalogueEntry

MONITORING_API = "monitoring.coreos.com/v1"
METRICS_PATH = "/metrics"
"""BentoML serves its Prometheus metrics on the service's own HTTP port."""
SCRAPE_INTERVAL = "30s"
SCRAPE_TIMEOUT = "10s"


@dataclass(frozen=True)
class ModelMonitoringArgs:
    entry: CatalogueEntry
    shared: SharedServices
    on_gpu: bool = False
    """The model serves on a GPU pool: its dashboard also draws its replicas' GPUs (DCGM's series)."""


def service_monitor_spec(entry: CatalogueEntry, namespace: str) -> dict:
    """Selects exactly the model's Service (infra/model_service.py labels it with model_labels)."""
    service = ModelTargets(entry.name).deployment
    return {
        "selector": {"matchLabels": model_labels(service, entry)},
        "namespaceSelector": {"matchNames": [namespace]},
        "endpoints": [
            {
                "port": HTTP_PORT_NAME,
                "path": METRICS_PATH,
                "scheme": "http",
                "interval": SCRAPE_INTERVAL,
                "scrapeTimeout": SCRAPE_TIMEOUT,
                "honorLabels": True,
            }
        ],
    }


def prometheus_rule_spec(entry: CatalogueEntry, namespace: str) -> dict:
    """The generator's group for the entry, its selectors limited to the models namespace."""
    return {"groups": [model_rule_group(entry, namespace)]}


class ModelMonitoring(pulumi.ComponentResource):
    """A ServiceMonitor and a PrometheusRule for one model, and its Grafana dashboard."""

    def __init__(self, name: str, args: ModelMonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:ModelMonitoring", name, None, opts)
        entry, namespace = args.entry, args.shared.namespace
        service = ModelTargets(entry.name).deployment
        labels = model_labels(service, entry)
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[args.shared.monitoring])
        k8s.apiextensions.CustomResource(
            f"{name}-service-monitor",
            api_version=MONITORING_API,
            kind="ServiceMonitor",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=service, namespace=namespace, labels=labels),
            spec=service_monitor_spec(entry, namespace),
            opts=after_crds,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version=MONITORING_API,
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"model-{entry.name}", namespace=namespace, labels=labels),
            spec=prometheus_rule_spec(entry, namespace),
            opts=after_crds,
        )
        # In the monitoring namespace, where the sidecar looks; after the release, which creates it.
        dashboard = model_dashboard(entry, namespace, on_gpu=args.on_gpu)
        dashboard_config_map(f"{name}-dashboard", dashboard, labels, after_crds)
        self.register_outputs({})
