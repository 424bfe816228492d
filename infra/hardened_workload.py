"""The hardened workload: the one pod shape every platform component that declares pods builds from.

A component says what differs (image, command, environment, requests and limits, probes, the IRSA
service account, a GPU pool); everything else is decided here once: Pod Security `restricted`
contexts (infra/pod_security.py), a writable emptyDir only at /tmp, the service-account token
mounted only where IRSA needs it, GPU taint toleration with the pool's node selector, and a rolling
update that never goes below the desired replica count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.node_pool import GPU_RESOURCE, GPU_TAINT_KEY, POOL_LABEL
from infra.pod_security import container_security_context, pod_security_context, tmp_mount, tmp_volume

HTTP_PORT_NAME = "http"
"""The container port probes, Services and Ingresses address by name, never by number."""


@dataclass(frozen=True)
class Compute:
    """What one container asks the scheduler for (requests), and the most it may use (limits)."""

    cpu: str
    """CPU request, a Kubernetes quantity (`250m`, `2`): reserved on the node the pod is scheduled to."""
    memory: str
    """Memory request (`512Mi`)."""
    cpu_limit: str | None = None
    """The container is throttled above it; None: the request."""
    memory_limit: str | None = None
    """The container is killed above it; None: the request."""
    gpus: int = 0
    """`nvidia.com/gpu` devices, as a limit only (Kubernetes sets the request equal to it)."""

    def requirements(self) -> k8s.core.v1.ResourceRequirementsArgs:
        limits = {"cpu": self.cpu_limit or self.cpu, "memory": self.memory_limit or self.memory}
        if self.gpus:
            limits[GPU_RESOURCE] = str(self.gpus)
        return k8s.core.v1.ResourceRequirementsArgs(requests={"cpu": self.cpu, "memory": self.memory}, limits=limits)


@dataclass(frozen=True)
class HttpCheck:
    """One HTTP probe against the container's `http` port."""

    path: str
    period_seconds: int
    failure_threshold: int
    """Consecutive failures before the probe counts as failed."""
    timeout_seconds: int | None = None
    """None: Kubernetes' default of one second."""

    def probe(self) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=self.path, port=HTTP_PORT_NAME),
            period_seconds=self.period_seconds,
            timeout_seconds=self.timeout_seconds,
            failure_threshold=self.failure_threshold,
        )


@dataclass(frozen=True)
class HttpProbes:
    """The three probes of a container that serves HTTP."""

    startup: HttpCheck
    """Holds the other two back until the process first answers (slow model or schema loads)."""
    readiness: HttpCheck
    """Failing: the pod gets no traffic, and a rollout does not proceed past it."""
    liveness: HttpCheck
    """Failing: the container is restarted."""


@dataclass(frozen=True)
class WorkloadContainer:
    """The one container of a platform pod: what differs between workloads."""

    name: str
    image: pulumi.Input[str]
    """Image reference by digest (`repo@sha256:...`)."""
    compute: Compute
    command: Sequence[str] | None = None
    """None: the image's entrypoint."""
    args: Sequence[pulumi.Input[str]] | None = None
    env: Sequence[k8s.core.v1.EnvVarArgs] | None = None
    """Plain values, or references to Secrets; never secret literals."""
    http_port: int | None = None
    """The port named `http` (what the probes and the Service target); None: the pod serves nothing."""
    probes: HttpProbes | None = None
    mounts: Sequence[k8s.core.v1.VolumeMountArgs] = ()
    """Mounts besides the writable /tmp, which every container gets."""


@dataclass(frozen=True)
class WorkloadPod:
    """A platform pod: its container and how it is scheduled and identified."""

    container: WorkloadContainer
    tmp_size: str = "1Gi"
    """Size limit of the emptyDir at /tmp, the only writable path (the root file system is read-only)."""
    irsa_service_account: str | None = None
    """The service account whose IRSA role the pod calls AWS as. Its token is mounted, which the EKS pod
    identity webhook needs for the web-identity token; None: the pod runs with no token at all."""
    volumes: Sequence[k8s.core.v1.VolumeArgs] = ()
    """Volumes besides /tmp, for the container's `mounts`."""
    gpu_pool: str | None = None
    """GPU pool name: the pod tolerates the GPU taint and is scheduled on that pool only. Set exactly
    when the container asks for GPUs."""
    termination_grace_period_seconds: int | None = None
    """None: Kubernetes' default of 30 seconds."""
    spread_over_zones: bool = False
    """Spread the replicas over availability zones where the scheduler can."""

    def __post_init__(self) -> None:
        if (self.gpu_pool is None) != (self.container.compute.gpus == 0):
            raise ValueError("a pod asks for GPUs exactly when it is placed on a GPU pool")


@dataclass(frozen=True)
class JobLimits:
    """How long a Job's pod may take, and how often it is retried."""

    retries: int
    """Pod failures before the Job fails (`backoffLimit`)."""
    deadline_seconds: int
    """The Job fails after this long, however many retries remain (`activeDeadlineSeconds`)."""
    ttl_seconds_after_finished: int | None = None
    """None: the finished Job stays until it is deleted (Pulumi deletes it when it replaces it)."""


def aws_runtime_environment(region: str) -> list[k8s.core.v1.EnvVarArgs]:
    """The region for the AWS SDKs (pods cannot reach instance metadata: hop limit 1), and the writable
    /tmp for everything that writes temporary files. The IRSA variables come from the webhook."""
    return [
        k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=region),
        k8s.core.v1.EnvVarArgs(name="AWS_DEFAULT_REGION", value=region),
        k8s.core.v1.EnvVarArgs(name="TMPDIR", value="/tmp"),
    ]


def container(spec: WorkloadContainer) -> k8s.core.v1.ContainerArgs:
    probes = spec.probes
    ports = None
    if spec.http_port is not None:
        ports = [k8s.core.v1.ContainerPortArgs(name=HTTP_PORT_NAME, container_port=spec.http_port)]
    return k8s.core.v1.ContainerArgs(
        name=spec.name,
        image=spec.image,
        command=None if spec.command is None else list(spec.command),
        args=None if spec.args is None else list(spec.args),
        ports=ports,
        env=None if spec.env is None else list(spec.env),
        volume_mounts=[tmp_mount(), *spec.mounts],
        security_context=container_security_context(),
        resources=spec.compute.requirements(),
        startup_probe=probes.startup.probe() if probes else None,
        readiness_probe=probes.readiness.probe() if probes else None,
        liveness_probe=probes.liveness.probe() if probes else None,
    )


def gpu_tolerations(pod: WorkloadPod) -> list[k8s.core.v1.TolerationArgs] | None:
    """GPU pools are tainted (infra/node_pool.py): only pods that tolerate it land there."""
    if pod.gpu_pool is None:
        return None
    return [k8s.core.v1.TolerationArgs(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")]


def zone_spread(labels: Mapping[str, str]) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Best effort (ScheduleAnyway): a zone short of capacity delays no pod."""
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
        )
    ]


def pod_spec(labels: Mapping[str, str], pod: WorkloadPod, restart_policy: str | None = None) -> k8s.core.v1.PodSpecArgs:
    return k8s.core.v1.PodSpecArgs(
        service_account_name=pod.irsa_service_account,
        automount_service_account_token=pod.irsa_service_account is not None,
        restart_policy=restart_policy,
        security_context=pod_security_context(),
        termination_grace_period_seconds=pod.termination_grace_period_seconds,
        volumes=[tmp_volume(pod.tmp_size), *pod.volumes],
        node_selector=None if pod.gpu_pool is None else {POOL_LABEL: pod.gpu_pool},
        tolerations=gpu_tolerations(pod),
        topology_spread_constraints=zone_spread(labels) if pod.spread_over_zones else None,
        containers=[container(pod.container)],
    )


def pod_template(
    labels: Mapping[str, str], pod: WorkloadPod, restart_policy: str | None = None
) -> k8s.core.v1.PodTemplateSpecArgs:
    return k8s.core.v1.PodTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=dict(labels)), spec=pod_spec(labels, pod, restart_policy)
    )


def deployment_spec(labels: Mapping[str, str], pod: WorkloadPod, replicas: int) -> k8s.apps.v1.DeploymentSpecArgs:
    """Replicas of `pod`, rolled one at a time: a new pod must turn ready before an old one goes."""
    return k8s.apps.v1.DeploymentSpecArgs(
        replicas=replicas,
        selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
        strategy=k8s.apps.v1.DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
        ),
        template=pod_template(labels, pod),
    )


def job_spec(labels: Mapping[str, str], pod: WorkloadPod, limits: JobLimits) -> k8s.batch.v1.JobSpecArgs:
    """`pod` run to completion; a failed pod is replaced (never restarted in place), up to the limits."""
    return k8s.batch.v1.JobSpecArgs(
        backoff_limit=limits.retries,
        active_deadline_seconds=limits.deadline_seconds,
        ttl_seconds_after_finished=limits.ttl_seconds_after_finished,
        template=pod_template(labels, pod, restart_policy="Never"),
    )
