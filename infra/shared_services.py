"""What every model's workloads share: cluster identity, buckets, images, tracking and pipelines.

One object instead of the same dozen fields on every per-model component's arguments. Its parts are
the platform's own components (the buckets, Kubeflow Pipelines, the dataset seed), handed over as
they are, the way pulumi-eks hands over its cluster: a component reads `shared.predictions.arn`
where it needs it, and nothing is copied into fields on the way.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.alert_topic import AlertTopic
from infra.dataset_seed import DatasetSeed
from infra.hardened_workload import aws_runtime_environment
from infra.kubeflow_pipelines import KubeflowPipelines
from infra.secure_bucket import SecureBucket
from infra.workload_role import ClusterIdentity
from workloads.catalogue_entry import ENTRY_VARIABLE, CatalogueEntry, entry_to_json
from workloads.settings import TrackingClientVariables


@dataclass(frozen=True)
class TrackingClient:
    """How pods outside the tracking server's namespace reach it."""

    url: pulumi.Input[str]
    namespace: str
    """The server's namespace: the clients' NetworkPolicies admit egress to it."""
    credentials_secret: str
    """A Secret in the clients' own namespace, with the keys `username` and `password`."""


@dataclass(frozen=True)
class WorkloadImages:
    """The images the models' workloads run, by digest (`repo@sha256:...`)."""

    serving: pulumi.Input[str]
    drift: pulumi.Input[str]
    training: pulumi.Input[str]
    """Training image with torch's CPU build; also runs the schedule sync Jobs and the dataset seed."""
    gpu_training: pulumi.Input[str] | None = None
    """Training image with torch's CUDA build; built only when a model of the stack trains on GPU."""
    gpu_serving: pulumi.Input[str] | None = None
    """Serving image with torch's CUDA build; built only when the stack serves a model on a GPU pool."""

    def training_for(self, gpu: bool) -> pulumi.Input[str]:
        """The image a model's pipeline steps run in."""
        if not gpu:
            return self.training
        if self.gpu_training is None:
            raise ValueError("a model trains on the GPU pool but the stack built no GPU training image")
        return self.gpu_training

    def serving_for(self, gpu_pool: str | None) -> pulumi.Input[str]:
        """The image a model's service runs: the CUDA variant on a GPU pool."""
        if gpu_pool is None:
            return self.serving
        if self.gpu_serving is None:
            raise ValueError(f"a model is served on GPU pool {gpu_pool!r} but the stack built no GPU serving image")
        return self.gpu_serving


@dataclass(frozen=True)
class SharedServices:
    """What every model's components use: cluster identity, buckets, tracking and pipeline endpoints."""

    identity: ClusterIdentity
    region: str
    namespace: str
    """Namespace of the model services and drift jobs."""
    tracking: TrackingClient
    pipelines: KubeflowPipelines
    """Where the training schedules upload their pipelines and the drift jobs submit retraining runs."""
    datasets: DatasetSeed
    """The datasets store the training runs read, with its first version of each dataset written."""
    predictions: SecureBucket
    """Each model's service writes its prediction log under the model's prefix; its drift job reads it."""
    labels: SecureBucket
    """Ground truth: each model's service writes the labels sent to `/feedback` under the model's
    prefix. Its own bucket, not a prefix of the predictions bucket: predictions expire after the
    stack's retention, labels are what the next dataset version is built from."""
    reports: SecureBucket
    """Each model's drift job writes its reports under the model's prefix."""
    images: WorkloadImages
    monitoring: pulumi.Resource
    """The monitoring stack: its release installs the CRDs the models' ServiceMonitors and rules need."""
    alerts_topic: AlertTopic | None = None
    """The stack's SNS alert topic: the drift jobs publish to it as Alertmanager does."""
    serving_autoscaler: pulumi.Resource | None = None
    """KEDA (infra/serving_autoscaler.py), where a model serves on a GPU pool: its release installs
    the ScaledObject CRD and webhook; None in a stack whose models all serve on CPU."""


def tracking_client_environment(shared: SharedServices) -> list[k8s.core.v1.EnvVarArgs]:
    """MLflow client settings: the URL as a value, the credentials from the Secret (never literals)."""

    def from_secret(key: str) -> k8s.core.v1.EnvVarSourceArgs:
        return k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=shared.tracking.credentials_secret, key=key)
        )

    return [
        k8s.core.v1.EnvVarArgs(name=TrackingClientVariables.URI, value=shared.tracking.url),
        k8s.core.v1.EnvVarArgs(name=TrackingClientVariables.USERNAME, value_from=from_secret("username")),
        k8s.core.v1.EnvVarArgs(name=TrackingClientVariables.PASSWORD, value_from=from_secret("password")),
        *aws_runtime_environment(shared.region),
    ]


def catalogue_entry_variable(entry: CatalogueEntry) -> k8s.core.v1.EnvVarArgs:
    """The model's catalogue entry for the pod: the images hold no catalogue, so a new model rebuilds none."""
    return k8s.core.v1.EnvVarArgs(name=ENTRY_VARIABLE, value=entry_to_json(entry))


def model_labels(app: str, entry: CatalogueEntry) -> dict[str, str]:
    """Labels of one model's workload: its app name, and the model, which selects all of its objects."""
    return {"app.kubernetes.io/name": app, "mlops.platform/model": entry.name}
