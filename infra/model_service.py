"""One model's BentoML service on the cluster: it loads `models:/<model>@production` and follows it.

The pods get the tracking server's client credentials from a Secret and may write only their own
model's prefix of the predictions bucket (the drift job reads it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ModelSettings
from infra.hardened_workload import (
    HTTP_PORT_NAME,
    Compute,
    HttpCheck,
    HttpProbes,
    WorkloadContainer,
    WorkloadPod,
    deployment_spec,
)
from infra.iam_policies import bucket_prefix_statements
from infra.network_rules import (
    IRSA_TOKEN_SKIP,
    TRACKING_CREDENTIALS_SKIP,
    dns_egress,
    https_egress,
    platform_namespaces,
    tracking_egress,
)
from infra.serving_autoscaler import HPA_OWNERSHIP_ANNOTATION, PROMETHEUS_URL
from infra.shared_services import SharedServices, catalogue_entry_variable, model_labels, tracking_client_environment
from infra.workload_role import WorkloadRoleArgs, service_account_with_role
from observability.metrics import REQUESTS_IN_PROGRESS
from observability.targets import ModelTargets
from workloads.catalogue_entry import CatalogueEntry, ServingBatching, ServingScale
from workloads.serving.settings import ServingVariables, default_batch_limits

PORT = 3000
SCALED_OBJECT_API = "keda.sh/v1alpha1"
IN_FLIGHT_WINDOW = "1m"
"""Two scrapes (every 30 s, infra/model_monitoring.py): one missed scrape does not zero the input."""
# A model's pods turn ready only once the registry names a production version, and on a new
# platform none exists before the first training run, which starts after `pulumi up` (the
# TrainingSchedule's initial run; staging and prod also wait for a reviewed `mlops promote`).
# Awaiting readiness, as pulumi-kubernetes does for Deployments and for Services (their selected
# pods), would fail that first `pulumi up` after its timeout. Rollouts stay safe without it: with
# maxUnavailable 0 a new pod that never turns ready replaces nothing, and the Service routes to
# ready pods only.
NOT_AWAITED = {"pulumi.com/skipAwait": "true"}


# Loading a model from the registry can take a while on a cold node: up to five minutes to start.
SERVICE_PROBES = HttpProbes(
    startup=HttpCheck("/livez", period_seconds=5, failure_threshold=60),
    readiness=HttpCheck("/readyz", period_seconds=5, failure_threshold=2),
    liveness=HttpCheck("/livez", period_seconds=15, timeout_seconds=5, failure_threshold=4),
)


def in_flight_target(entry: CatalogueEntry, scale: ServingScale, batching: ServingBatching) -> int:
    """Requests in flight per replica to aim at: the entry's (or stack's) setting, else one full batch
    (the batching's `max_batch_size` where the catalogue or the stack sets it, else the service's default).

    A replica answers at most `max_batch_size` requests in one forward pass; more in flight queue
    behind it and wait for the next batch, which is what a new replica should take."""
    return scale.in_flight_per_replica or batching.max_batch_size or default_batch_limits(entry)[0]


def in_flight_query(entry: CatalogueEntry, namespace: str) -> str:
    """All the model's replicas' in-flight requests (its routes only), each averaged over two scrapes.

    KEDA's Prometheus scaler wants one sample (v2.20.2 `prometheus_scaler.go`: more is an error,
    none reads as 0 with `ignoreNullValues`, the default), and its AverageValue target divides it
    by the replica count, so the sum is the right input."""
    selector = ModelTargets(entry.name, namespace).requests()
    return f"sum(avg_over_time({REQUESTS_IN_PROGRESS}{selector}[{IN_FLIGHT_WINDOW}]))"


def scaled_object_spec(
    entry: CatalogueEntry, app: str, namespace: str, scale: ServingScale, batching: ServingBatching
) -> dict[str, Any]:
    """The ScaledObject's spec (fields of KEDA 2.20.2's CRD, `keda.sh/v1alpha1`)."""
    trigger = {
        "type": "prometheus",
        "name": "in-flight-requests",
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": PROMETHEUS_URL,
            "query": in_flight_query(entry, namespace),
            "threshold": str(in_flight_target(entry, scale, batching)),
        },
    }
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
        "minReplicaCount": scale.min_replicas,
        "maxReplicaCount": scale.max_replicas,
        "pollingInterval": 15,
        # Prometheus unreadable three polls in a row: hold what runs (never fewer than the minimum)
        # rather than scale down a busy model on missing data.
        "fallback": {"failureThreshold": 3, "replicas": scale.min_replicas, "behavior": "currentReplicasIfHigher"},
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                # A GPU replica takes minutes to come back (node start, image pull, model load): give
                # one back only after ten quiet minutes, and one at a time.
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": 600,
                        "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                    }
                }
            }
        },
        "triggers": [trigger],
    }


def torch_threads(cpu: str) -> int:
    """Whole CPUs in a Kubernetes CPU quantity (`500m` -> 1, `2` -> 2), at least one."""
    cores = int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    return max(1, int(cores))


@dataclass(frozen=True)
class ServingResources:
    cpu: str
    """CPU request and limit of one pod."""
    memory: str
    """Memory request and limit of one pod."""
    gpu_pool: str | None = None
    """GPU pool name (`gpuNodePools[].name`): one `nvidia.com/gpu` per pod, scheduled on that pool."""

    def compute(self) -> Compute:
        return Compute(cpu=self.cpu, memory=self.memory, gpus=0 if self.gpu_pool is None else 1)


@dataclass(frozen=True)
class ModelServiceArgs:
    entry: CatalogueEntry
    """The model's catalogue entry; its name is the registered model the service loads."""
    shared: SharedServices
    resources: ServingResources
    scale: ServingScale
    """Replica bounds and, on a GPU pool, the in-flight target (the catalogue's with the stack's overrides)."""
    alias: str = "production"
    """The registry alias the service loads and follows."""
    batching: ServingBatching = field(default_factory=ServingBatching)
    """Adaptive batching the Deployment sets (`effective_batching`); None fields keep the service's defaults."""


def effective_batching(entry: CatalogueEntry, settings: ModelSettings) -> ServingBatching:
    """The catalogue entry's batching with the stack's overrides (`models.<name>.maxBatchSize`, ...)."""
    catalogue = entry.serving_batching
    return ServingBatching(
        max_batch_size=settings.max_batch_size or catalogue.max_batch_size,
        max_latency_ms=settings.max_latency_ms or catalogue.max_latency_ms,
        concurrent_batches=settings.concurrent_batches or catalogue.concurrent_batches,
    )


def device_environment(resources: ServingResources) -> list[k8s.core.v1.EnvVarArgs]:
    """On a GPU pool, MLOPS_DEVICE=cuda: a pod that sees no GPU (a wrong image, no device plugin) then
    fails its start with one line instead of quietly inferring on the CPU beside the GPU it pays for."""
    if resources.gpu_pool is None:
        return []
    return [k8s.core.v1.EnvVarArgs(name=ServingVariables.DEVICE, value="cuda")]


def batching_environment(batching: ServingBatching) -> list[k8s.core.v1.EnvVarArgs]:
    """The service's batching variables, only those set: an unset one keeps the default for the input size."""
    values = {
        ServingVariables.MAX_BATCH_SIZE: batching.max_batch_size,
        ServingVariables.MAX_LATENCY_MS: batching.max_latency_ms,
        ServingVariables.CONCURRENT_BATCHES: batching.concurrent_batches,
    }
    return [k8s.core.v1.EnvVarArgs(name=name, value=str(value)) for name, value in values.items() if value is not None]


class ModelService(pulumi.ComponentResource):
    """Deployment, Service, autoscaler (an HPA on CPU, a KEDA ScaledObject on a GPU pool), disruption budget,
    IRSA role and NetworkPolicy for one model."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:serving:ModelService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        model, shared = args.entry.name, args.shared
        app = f"serve-{model}"
        labels = model_labels(app, args.entry)
        # Its own prefix of the predictions and labels buckets, write only: the prediction log and
        # the ground truth sent to /feedback.
        writes = [
            *bucket_prefix_statements(
                shared.predictions.arn, model, shared.predictions.kms_key_arn, ("s3:PutObject",), "Predictions"
            ),
            *bucket_prefix_statements(shared.labels.arn, model, shared.labels.kms_key_arn, ("s3:PutObject",), "Labels"),
        ]
        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=shared.identity,
                namespace=shared.namespace,
                service_account=app,
                policy_statements=writes,
            ),
            labels,
            child,
        )
        deployment = self._create_deployment(name, app, labels, args)
        service = self._create_service(name, app, labels, args)
        self._create_autoscaler(name, app, labels, args, deployment)
        self._create_disruption_budget(name, app, labels, args)
        self._create_network_policy(name, app, labels, args)

        self.url = pulumi.Output.concat("http://", app, ".", shared.namespace, ".svc.cluster.local")
        self.register_outputs({"url": self.url, "service": service.metadata.apply(lambda m: m.name)})

    @staticmethod
    def _environment(args: ModelServiceArgs) -> list[k8s.core.v1.EnvVarArgs]:
        return [
            *tracking_client_environment(args.shared),
            k8s.core.v1.EnvVarArgs(name=ServingVariables.MODEL, value=args.entry.name),
            catalogue_entry_variable(args.entry),
            k8s.core.v1.EnvVarArgs(name=ServingVariables.MODEL_ALIAS, value=args.alias),
            k8s.core.v1.EnvVarArgs(name=ServingVariables.PREDICTIONS_STORE, value=args.shared.predictions.s3_uri()),
            k8s.core.v1.EnvVarArgs(name=ServingVariables.LABELS_STORE, value=args.shared.labels.s3_uri()),
            k8s.core.v1.EnvVarArgs(name="BENTOML_HOME", value="/tmp/bentoml"),
            # One intra-op thread per CPU of the limit: more threads than cores only thrash.
            k8s.core.v1.EnvVarArgs(name=ServingVariables.TORCH_THREADS, value=str(torch_threads(args.resources.cpu))),
            *batching_environment(args.batching),
            *device_environment(args.resources),
        ]

    def _create_deployment(
        self, name: str, app: str, labels: dict[str, str], args: ModelServiceArgs
    ) -> k8s.apps.v1.Deployment:
        service = WorkloadContainer(
            name="service",
            image=args.shared.images.serving_for(args.resources.gpu_pool),
            http_port=PORT,
            env=self._environment(args),
            compute=args.resources.compute(),
            probes=SERVICE_PROBES,
        )
        pod = WorkloadPod(
            container=service,
            tmp_size="2Gi",
            irsa_service_account=app,
            gpu_pool=args.resources.gpu_pool,
            # SIGTERM flushes the prediction log; give it time before the kill.
            termination_grace_period_seconds=45,
        )
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=args.shared.namespace,
                labels=labels,
                annotations={**IRSA_TOKEN_SKIP, **TRACKING_CREDENTIALS_SKIP, **NOT_AWAITED},
            ),
            # The autoscaler owns the replica count; this is only the starting point.
            spec=deployment_spec(labels, pod, replicas=args.scale.min_replicas),
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["spec.replicas"]),
        )

    def _create_service(
        self, name: str, app: str, labels: dict[str, str], args: ModelServiceArgs
    ) -> k8s.core.v1.Service:
        return k8s.core.v1.Service(
            f"{name}-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app, namespace=args.shared.namespace, labels=labels, annotations=NOT_AWAITED
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name=HTTP_PORT_NAME, port=80, target_port=HTTP_PORT_NAME)],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_autoscaler(
        self,
        name: str,
        app: str,
        labels: dict[str, str],
        args: ModelServiceArgs,
        deployment: k8s.apps.v1.Deployment,
    ) -> None:
        """On a GPU pool: KEDA on the requests in flight per replica. On CPU: 70 % of the CPU request."""
        after_deployment = pulumi.ResourceOptions(parent=self, depends_on=[deployment])
        if args.resources.gpu_pool is not None:
            declare_scaled_object(f"{name}-scaled-object", app, labels, args, after_deployment)
            return
        cpu_utilization = k8s.autoscaling.v2.MetricSpecArgs(
            type="Resource",
            resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                name="cpu", target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=70)
            ),
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=args.shared.namespace,
                labels=labels,
                # Lets KEDA's webhook admit this model's ScaledObject while this HPA still exists: moved onto
                # a GPU pool, the model gets its ScaledObject before `pulumi up` deletes the HPA (its last step).
                annotations={HPA_OWNERSHIP_ANNOTATION: "false"},
            ),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=app
                ),
                min_replicas=args.scale.min_replicas,
                max_replicas=args.scale.max_replicas,
                metrics=[cpu_utilization],
            ),
            opts=after_deployment,
        )

    def _create_disruption_budget(self, name: str, app: str, labels: dict[str, str], args: ModelServiceArgs) -> None:
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-disruption-budget",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_network_policy(self, name: str, app: str, labels: dict[str, str], args: ModelServiceArgs) -> None:
        """In: platform namespaces (gateways, the local loop's traffic, monitoring). Out: DNS, tracking, HTTPS."""
        from_platform = k8s.networking.v1.NetworkPolicyIngressRuleArgs(
            from_=[platform_namespaces()], ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PORT)]
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                policy_types=["Ingress", "Egress"],
                ingress=[from_platform],
                egress=[dns_egress(), tracking_egress(args.shared.tracking.namespace), https_egress()],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


def declare_scaled_object(
    resource_name: str, app: str, labels: dict[str, str], args: ModelServiceArgs, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """KEDA creates and owns the HPA (`keda-hpa-<app>`) from this; it waits for KEDA's CRD and webhook."""
    keda = args.shared.serving_autoscaler
    if keda is None:
        pool = args.resources.gpu_pool
        raise ValueError(f"{args.entry.name} serves on GPU pool {pool!r} but no KEDA is installed")
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=SCALED_OBJECT_API,
        kind="ScaledObject",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
        spec=scaled_object_spec(args.entry, app, args.shared.namespace, args.scale, args.batching),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[keda])),
    )
