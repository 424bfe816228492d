"""One model's BentoML service on the cluster: it loads `models:/<model>@production` and follows it.

The pods get the tracking server's client credentials from a Secret and may write only their own
model's prefix of the predictions bucket (the drift job reads it).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.iam_policies import bucket_prefix_statements
from infra.network_rules import (
    IRSA_TOKEN_SKIP,
    TRACKING_CREDENTIALS_SKIP,
    dns_egress,
    https_egress,
    platform_namespaces,
    tracking_egress,
)
from infra.node_pool import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from infra.pod_security import (
    container_security_context,
    pod_security_context,
    tmp_mount,
    tmp_volume,
)
from infra.shared_services import SharedServices, tracking_client_environment
from infra.workload_role import WorkloadRoleArgs, service_account_with_role
from workloads import catalogue
from workloads.catalogue_entry import ENTRY_VARIABLE, entry_to_json

PORT = 3000
# A model's pods turn ready only once the registry names a production version, and on a new
# platform none exists before the first training run, which starts after `pulumi up` (the
# TrainingSchedule's initial run; staging and prod also wait for a reviewed `mlops promote`).
# Awaiting readiness, as pulumi-kubernetes does for Deployments and for Services (their selected
# pods), would fail that first `pulumi up` after its timeout. Rollouts stay safe without it: with
# maxUnavailable 0 a new pod that never turns ready replaces nothing, and the Service routes to
# ready pods only.
NOT_AWAITED = {"pulumi.com/skipAwait": "true"}


def torch_threads(cpu: str) -> int:
    """Whole CPUs in a Kubernetes CPU quantity (`500m` -> 1, `2` -> 2), at least one."""
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, int(cores))


@dataclass(frozen=True)
class ServingResources:
    cpu: str
    memory: str
    gpu_pool: str | None = None
    """GPU pool name (`gpuNodePools[].name`): one `nvidia.com/gpu` per pod, scheduled on that pool."""


@dataclass(frozen=True)
class ModelServiceArgs:
    model: str
    shared: SharedServices
    resources: ServingResources
    min_replicas: int
    max_replicas: int
    alias: str = "production"


class ModelService(pulumi.ComponentResource):
    """Deployment, Service, autoscaler, disruption budget, IRSA role and NetworkPolicy for one model."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = f"serve-{args.model}"
        labels = {"app.kubernetes.io/name": app, "mlops.platform/model": args.model}

        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.shared.identity,
                namespace=args.shared.namespace,
                service_account=app,
                policy_statements=bucket_prefix_statements(
                    args.shared.predictions_bucket_arn,
                    args.model,
                    args.shared.buckets_kms_key_arn,
                    actions=("s3:PutObject",),
                ),
            ),
            labels,
            child,
        )

        gpu = args.resources.gpu_pool is not None
        limits = {"cpu": args.resources.cpu, "memory": args.resources.memory}
        if gpu:
            limits[GPU_RESOURCE] = "1"
        environment = [
            *tracking_client_environment(args.shared),
            k8s.core.v1.EnvVarArgs(name="MLOPS_MODEL", value=args.model),
            # The image has no catalogue (a new model must not rebuild it): the pod gets its model's entry.
            k8s.core.v1.EnvVarArgs(name=ENTRY_VARIABLE, value=entry_to_json(catalogue.get(args.model))),
            k8s.core.v1.EnvVarArgs(name="MLOPS_MODEL_ALIAS", value=args.alias),
            k8s.core.v1.EnvVarArgs(
                name="MLOPS_PREDICTIONS_STORE",
                value=pulumi.Output.concat("s3://", args.shared.predictions_bucket_name),
            ),
            k8s.core.v1.EnvVarArgs(name="BENTOML_HOME", value="/tmp/bentoml"),
            # One intra-op thread per CPU of the limit: more threads than cores only thrash.
            k8s.core.v1.EnvVarArgs(name="MLOPS_TORCH_THREADS", value=str(torch_threads(args.resources.cpu))),
        ]
        probe_port = "http"
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=args.shared.namespace,
                labels=labels,
                annotations={**IRSA_TOKEN_SKIP, **TRACKING_CREDENTIALS_SKIP, **NOT_AWAITED},
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # The autoscaler owns the replica count; this is only the starting point.
                replicas=args.min_replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=app,
                        automount_service_account_token=True,
                        security_context=pod_security_context(),
                        # SIGTERM flushes the prediction log; give it time before the kill.
                        termination_grace_period_seconds=45,
                        volumes=[tmp_volume("2Gi")],
                        node_selector={POOL_LABEL: args.resources.gpu_pool} if args.resources.gpu_pool else None,
                        tolerations=[
                            k8s.core.v1.TolerationArgs(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")
                        ]
                        if gpu
                        else None,
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="service",
                                image=args.shared.serving_image,
                                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT)],
                                env=environment,
                                volume_mounts=[tmp_mount()],
                                security_context=container_security_context(),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": args.resources.cpu, "memory": args.resources.memory},
                                    limits=limits,
                                ),
                                # Loading a model from the registry can take a while on a cold node.
                                startup_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/livez", port=probe_port),
                                    period_seconds=5,
                                    failure_threshold=60,
                                ),
                                readiness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/readyz", port=probe_port),
                                    period_seconds=5,
                                    failure_threshold=2,
                                ),
                                liveness_probe=k8s.core.v1.ProbeArgs(
                                    http_get=k8s.core.v1.HTTPGetActionArgs(path="/livez", port=probe_port),
                                    period_seconds=15,
                                    timeout_seconds=5,
                                    failure_threshold=4,
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["spec.replicas"]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app, namespace=args.shared.namespace, labels=labels, annotations=NOT_AWAITED
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=80, target_port="http")],
            ),
            opts=child,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=app
                ),
                min_replicas=args.min_replicas,
                max_replicas=args.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=70),
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployment]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels)
            ),
            opts=child,
        )
        self._network_policy(name, app, labels, args)

        self.url = pulumi.Output.concat("http://", app, ".", args.shared.namespace, ".svc.cluster.local")
        self.register_outputs({"url": self.url, "service": service.metadata.apply(lambda m: m.name)})

    def _network_policy(self, name: str, app: str, labels: dict[str, str], args: ModelServiceArgs) -> None:
        """In: platform namespaces (gateways, the local loop's traffic, monitoring). Out: DNS, tracking, HTTPS."""
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[platform_namespaces()],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PORT)],
                    )
                ],
                egress=[dns_egress(), tracking_egress(args.shared.tracking_namespace), https_egress()],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
