"""Prometheus, Alertmanager and Grafana for one environment: kube-prometheus-stack, pinned.

Why that chart: it installs the prometheus-operator with its CRDs, which is what lets each model
declare its own scrape target and rules as objects (ServiceMonitor, PrometheusRule,
infra/model_monitoring.py) beside its other objects, and it bundles kube-state-metrics, whose
series the replica and drift-job alerts read. The separate `prometheus` chart would need the rules
and targets in its own values, so a new model would edit the monitoring release.

Version 88.3.0 (operator v0.93.0, Grafana chart 12.10.4, kube-state-metrics chart 8.2.0): the
newest release whose operator version could be read in source while pinning it (88.4.0 and later
move to operator v0.93.1). What the values rely on is listed in infra/monitoring_values.py.

Grafana is reached as the MLflow UI is: by port-forward in every stack, and through an internal
ALB where the stack gives the tracking server one (`tracking.internalIngress`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.alert_topic import AlertTopic
from infra.cluster_addons import HelmChart
from infra.config import MonitoringConfig
from infra.grafana_dashboards import dashboard_config_map
from infra.internal_ingress import InternalIngressArgs, internal_ingress
from infra.monitoring_names import (
    ALERTMANAGER_SERVICE_ACCOUNT,
    GRAFANA_ADMIN_PASSWORD_KEY,
    GRAFANA_ADMIN_SECRET,
    GRAFANA_ADMIN_USER_KEY,
    GRAFANA_NAME,
    GRAFANA_SERVICE_PORT,
    NAMESPACE,
    RELEASE_NAME,
)
from infra.monitoring_network import monitoring_policies
from infra.monitoring_values import MonitoringValuesArgs, chart_values
from infra.pod_security import platform_namespace
from infra.pushgateway import declare_pushgateway
from infra.workload_role import ClusterIdentity, WorkloadRole, WorkloadRoleArgs
from observability.dashboards import overview_dashboard
from workloads.catalogue_entry import CatalogueEntry

KUBE_PROMETHEUS_STACK = HelmChart(
    "kube-prometheus-stack", "88.3.0", "https://prometheus-community.github.io/helm-charts"
)
STORAGE_CLASS = "monitoring-gp3"
LABELS = {"app.kubernetes.io/name": "monitoring", "app.kubernetes.io/part-of": "mlops-platform"}
GRAFANA_ADMIN = "admin"


@dataclass(frozen=True)
class MonitoringStackArgs:
    prometheus: MonitoringConfig
    """How long Prometheus keeps samples and how large its volume is."""
    models_namespace: str
    """Where the models' ServiceMonitors, PrometheusRules and AlertmanagerConfig are."""
    vpc_cidr: str
    internal_ingress: bool
    """Grafana behind an internal ALB, as the tracking server in this stack."""
    retain_volumes: bool
    """Keep Prometheus' EBS volume when its claim goes (where `pulumi destroy` keeps the stack's data)."""
    models: tuple[CatalogueEntry, ...] = ()
    """The enabled models, side by side on the overview dashboard (each one's own comes with it)."""
    install_after: tuple[pulumi.Resource, ...] = field(default_factory=tuple)
    """The add-ons: the load balancer controller's webhook must answer before the chart's Services exist."""
    alerts_topic: AlertTopic | None = None
    """The stack's SNS alert topic: Alertmanager gets an IRSA role that may publish to it (with `identity`)."""
    identity: ClusterIdentity | None = None
    gpu_exporters: bool = False
    """The stack has GPU pools, whose DCGM exporters Prometheus scrapes (infra/gpu_metrics.py)."""


class MonitoringStack(pulumi.ComponentResource):
    """Namespace, storage class, Grafana's admin Secret, the pinned release, NetworkPolicies, Ingress,
    the Pushgateway the daily jobs push to (infra/pushgateway.py), the models' overview dashboard."""

    namespace: str
    release: k8s.helm.v3.Release
    grafana_url: str
    grafana_admin_password: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:MonitoringStack", name, None, opts)
        namespace = platform_namespace(f"{name}-namespace", NAMESPACE, pulumi.ResourceOptions(parent=self))
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        storage_class = self._create_storage_class(name, args)
        password, admin = self._create_grafana_admin(name, in_namespace)
        alertmanager_role = self._create_alertmanager_role(name, args)
        values = chart_values(
            MonitoringValuesArgs(
                prometheus=args.prometheus,
                storage_class=STORAGE_CLASS,
                namespace=NAMESPACE,
                models_namespace=args.models_namespace,
                grafana_admin_secret=GRAFANA_ADMIN_SECRET,
                alertmanager_role_arn=alertmanager_role.arn if alertmanager_role else None,
            )
        )
        self.release = KUBE_PROMETHEUS_STACK.release(
            f"{name}-release",
            NAMESPACE,
            values,
            pulumi.ResourceOptions(parent=self, depends_on=[namespace, storage_class, admin, *args.install_after]),
            release_name=RELEASE_NAME,
            timeout=900,
        )
        policies = monitoring_policies(args.models_namespace, args.vpc_cidr, args.internal_ingress, args.gpu_exporters)
        for policy, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-network-policy-{policy}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy, namespace=NAMESPACE, labels=LABELS),
                spec=spec,
                opts=in_namespace,
            )
        declare_pushgateway(
            name,
            args.models_namespace,
            LABELS,
            pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        dashboard_config_map(
            f"{name}-overview-dashboard",
            overview_dashboard(args.models, args.models_namespace),
            LABELS,
            pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        if args.internal_ingress:
            self._create_grafana_ingress(name, pulumi.ResourceOptions(parent=self, depends_on=[self.release]))

        self.namespace = NAMESPACE
        self.grafana_url = f"http://{GRAFANA_NAME}.{NAMESPACE}.svc.cluster.local:{GRAFANA_SERVICE_PORT}"
        self.grafana_admin_password = pulumi.Output.secret(password.result)
        self.register_outputs({"chart": KUBE_PROMETHEUS_STACK.version, "grafanaUrl": self.grafana_url})

    def _create_alertmanager_role(self, name: str, args: MonitoringStackArgs) -> WorkloadRole | None:
        """Alertmanager's SNS receiver signs with the AWS SDK's default credentials (Alertmanager v0.33.1,
        the chart's, `notify/sns/sns.go`: aws-sdk-go-v2 LoadDefaultConfig unless keys are given), which
        read the web identity the EKS pod identity webhook injects for an annotated ServiceAccount."""
        if args.alerts_topic is None or args.identity is None:
            return None
        return WorkloadRole(
            f"{name}-alertmanager",
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=NAMESPACE,
                service_account=ALERTMANAGER_SERVICE_ACCOUNT,
                policy_statements=args.alerts_topic.publish_statements(),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_storage_class(self, name: str, args: MonitoringStackArgs) -> k8s.storage.v1.StorageClass:
        """Encrypted gp3 through the EBS CSI driver (a cluster add-on); EKS marks no class as default."""
        return k8s.storage.v1.StorageClass(
            f"{name}-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=STORAGE_CLASS, labels=LABELS),
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain" if args.retain_volumes else "Delete",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_grafana_admin(
        self, name: str, opts: pulumi.ResourceOptions
    ) -> tuple[random.RandomPassword, k8s.core.v1.Secret]:
        """Generated here, as the tracking server's admin; the chart reads it through `admin.existingSecret`."""
        password = random.RandomPassword(
            f"{name}-grafana-admin-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=NAMESPACE, labels=LABELS),
            type="Opaque",
            string_data={GRAFANA_ADMIN_USER_KEY: GRAFANA_ADMIN, GRAFANA_ADMIN_PASSWORD_KEY: password.result},
            opts=opts,
        )
        return password, secret

    @staticmethod
    def _create_grafana_ingress(name: str, opts: pulumi.ResourceOptions) -> None:
        internal_ingress(
            f"{name}-grafana-ingress",
            InternalIngressArgs(
                name=GRAFANA_NAME,
                namespace=NAMESPACE,
                labels=LABELS,
                service=GRAFANA_NAME,
                port=k8s.networking.v1.ServiceBackendPortArgs(number=GRAFANA_SERVICE_PORT),
                health_path="/api/health",
            ),
            opts,
        )
