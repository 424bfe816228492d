"""In-cluster add-ons every workload relies on, each a pinned Helm release.

`helm.v3.Release` (not `helm.v4.Chart`) because under mocks v4 charts are opaque: the tests and
the offline plan see a Release with its chart, version and values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.cluster import Cluster
from infra.config import GpuNodePoolConfig
from infra.gpu_sharing import device_plugin_values
from infra.iam_policies import Statement, cluster_autoscaler_statements, load_balancer_controller_statements
from infra.node_pool import GPU_TAINT_KEY
from infra.workload_role import WorkloadRole, WorkloadRoleArgs


@dataclass(frozen=True)
class HelmChart:
    chart: str
    version: str
    repository: str

    def release(
        self,
        resource_name: str,
        namespace: str,
        values: dict[str, Any],
        opts: pulumi.ResourceOptions,
        release_name: str | None = None,
        timeout: int = 600,
    ) -> k8s.helm.v3.Release:
        """This chart at its pinned version, installed atomically."""
        return k8s.helm.v3.Release(
            resource_name,
            name=release_name or self.chart,
            chart=self.chart,
            version=self.version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=self.repository),
            namespace=namespace,
            values=values,
            # A failed install or upgrade is rolled back and cleaned up, not left half-applied.
            atomic=True, cleanup_on_fail=True,
            timeout=timeout,
            opts=opts,
        )


# Pinned so an upstream release never changes a cluster without a reviewed diff.
NVIDIA_DEVICE_PLUGIN = HelmChart("nvidia-device-plugin", "0.20.0", "https://nvidia.github.io/k8s-device-plugin")
CLUSTER_AUTOSCALER = HelmChart("cluster-autoscaler", "9.59.0", "https://kubernetes.github.io/autoscaler")
METRICS_SERVER = HelmChart("metrics-server", "3.13.1", "https://kubernetes-sigs.github.io/metrics-server/")
LOAD_BALANCER_CONTROLLER = HelmChart("aws-load-balancer-controller", "1.17.1", "https://aws.github.io/eks-charts")

# The autoscaler's minor version must match the cluster's.
CLUSTER_AUTOSCALER_IMAGE_TAGS = {"1.32": "v1.32.7", "1.33": "v1.33.6", "1.34": "v1.34.5", "1.35": "v1.35.2"}

SYSTEM_NAMESPACE = "kube-system"
CLUSTER_AUTOSCALER_ACCOUNT = "cluster-autoscaler"
LOAD_BALANCER_CONTROLLER_ACCOUNT = "aws-load-balancer-controller"


@dataclass(frozen=True)
class ClusterAddonsArgs:
    cluster: Cluster
    """The cluster the add-ons run on; the Kubernetes provider comes in `opts` (`providers`)."""
    kubernetes_version: str
    region: str
    vpc_id: pulumi.Input[str]
    gpu_pools: tuple[GpuNodePoolConfig, ...] = ()
    """The stack's GPU pools: those that time-slice their GPUs get a device plugin configuration."""


class ClusterAddons(pulumi.ComponentResource):
    """NVIDIA device plugin, cluster autoscaler, metrics-server and the AWS Load Balancer Controller."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:cluster:ClusterAddons", name, None, opts)
        self._args = args
        # Without it the kubelet never advertises `nvidia.com/gpu`, and no GPU pod can be scheduled.
        self._release(
            f"{name}-nvidia-device-plugin",
            NVIDIA_DEVICE_PLUGIN,
            {
                "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
                # The chart's default affinity matches this label, which every GPU pool sets (no NFD needed).
                "nodeSelector": {"nvidia.com/gpu.present": "true"},
                # Time-slicing configurations, where a pool shares its GPUs (infra/gpu_sharing.py).
                **device_plugin_values(args.gpu_pools),
            },
        )
        self._create_cluster_autoscaler(name)
        self._release(
            f"{name}-metrics-server", METRICS_SERVER, {"args": ["--kubelet-preferred-address-types=InternalIP"]}
        )
        self._create_load_balancer_controller(name)
        self.register_outputs(
            {
                chart.chart: chart.version
                for chart in (NVIDIA_DEVICE_PLUGIN, CLUSTER_AUTOSCALER, METRICS_SERVER, LOAD_BALANCER_CONTROLLER)
            }
        )

    def _create_cluster_autoscaler(self, name: str) -> None:
        args = self._args
        role = self._role(
            f"{name}-cluster-autoscaler", CLUSTER_AUTOSCALER_ACCOUNT, cluster_autoscaler_statements(args.cluster.name)
        )
        self._release(
            f"{name}-cluster-autoscaler",
            CLUSTER_AUTOSCALER,
            {
                "cloudProvider": "aws",
                "awsRegion": args.region,
                "autoDiscovery": {"clusterName": args.cluster.name},
                "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAGS[args.kubernetes_version]},
                "rbac": {"serviceAccount": {"name": CLUSTER_AUTOSCALER_ACCOUNT, "annotations": _irsa_annotation(role)}},
                "extraArgs": {
                    # Spread GPU capacity across AZs.
                    "balance-similar-node-groups": "true",
                    # Keep nodes running kube-system pods that have no PodDisruptionBudget (the autoscaler
                    # itself, the controllers) rather than evict those pods: FAQ.md, and the default.
                    # "false" would let it remove them. From 1.33 such a pod stops blocking once older
                    # than --blocking-system-pod-distruption-timeout (1h). DaemonSet pods never block,
                    # so GPU pools still scale to zero.
                    "skip-nodes-with-system-pods": "true",
                    "expander": "least-waste",
                },
            },
        )

    def _create_load_balancer_controller(self, name: str) -> None:
        args = self._args
        role = self._role(
            f"{name}-load-balancer-controller",
            LOAD_BALANCER_CONTROLLER_ACCOUNT,
            load_balancer_controller_statements(args.cluster.name),
        )
        self._release(
            f"{name}-load-balancer-controller",
            LOAD_BALANCER_CONTROLLER,
            {
                "clusterName": args.cluster.name,
                # Pods cannot reach instance metadata (hop limit 1), so region and VPC are given.
                "region": args.region,
                "vpcId": args.vpc_id,
                "serviceAccount": {
                    "create": True,
                    "name": LOAD_BALANCER_CONTROLLER_ACCOUNT,
                    "annotations": _irsa_annotation(role),
                },
            },
        )

    def _role(self, name: str, service_account: str, statements: list[Statement]) -> WorkloadRole:
        return WorkloadRole(
            name,
            WorkloadRoleArgs(
                cluster=self._args.cluster.identity,
                namespace=SYSTEM_NAMESPACE,
                service_account=service_account,
                policy_statements=statements,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _release(self, name: str, chart: HelmChart, values: dict[str, Any]) -> k8s.helm.v3.Release:
        return chart.release(name, SYSTEM_NAMESPACE, values, pulumi.ResourceOptions(parent=self))


def _irsa_annotation(role: WorkloadRole) -> dict[str, pulumi.Output[str]]:
    """What the EKS pod identity webhook reads off a ServiceAccount to hand its pods the role."""
    return {"eks.amazonaws.com/role-arn": role.arn}
