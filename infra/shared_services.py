"""What every model's workloads share: cluster identity, buckets, images, tracking and pipelines.

One object instead of the same dozen fields on every per-model component's arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import aws_runtime_environment
from infra.workload_role import ClusterIdentity
from workloads.catalogue_entry import ENTRY_VARIABLE, CatalogueEntry, entry_to_json


@dataclass(frozen=True)
class SharedServices:
    """What every model's components use: cluster identity, buckets, tracking and pipeline endpoints."""

    identity: ClusterIdentity
    region: str
    namespace: str
    """Namespace of the model services and drift jobs."""
    tracking_url: pulumi.Input[str]
    tracking_namespace: str
    tracking_credentials_secret: str
    pipelines_api_url: str
    pipelines_namespace: str
    training_prerequisites: tuple[pulumi.Resource, ...]
    """What a first training run needs, which the schedule sync Jobs wait for: the Kubeflow
    Pipelines install (its API) and the seeded datasets (what the run fetches)."""
    predictions_bucket_name: pulumi.Input[str]
    predictions_bucket_arn: pulumi.Input[str]
    reports_bucket_name: pulumi.Input[str]
    reports_bucket_arn: pulumi.Input[str]
    buckets_kms_key_arn: pulumi.Input[str]
    serving_image: pulumi.Input[str]
    drift_image: pulumi.Input[str]
    training_image: pulumi.Input[str]
    """Training image with torch's CPU build; also runs the schedule sync Jobs."""
    gpu_training_image: pulumi.Input[str] | None = None
    """Training image with torch's CUDA build; built only when a model of the stack trains on GPU."""

    def training_image_for(self, gpu: bool) -> pulumi.Input[str]:
        """The image a model's pipeline steps run in."""
        if not gpu:
            return self.training_image
        if self.gpu_training_image is None:
            raise ValueError("a model trains on the GPU pool but the stack built no GPU training image")
        return self.gpu_training_image


def tracking_client_environment(shared: SharedServices) -> list[k8s.core.v1.EnvVarArgs]:
    """MLflow client settings: the URL as a value, the credentials from the Secret (never literals)."""

    def from_secret(key: str) -> k8s.core.v1.EnvVarSourceArgs:
        return k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=shared.tracking_credentials_secret, key=key)
        )

    return [
        k8s.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_URI", value=shared.tracking_url),
        k8s.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_USERNAME", value_from=from_secret("username")),
        k8s.core.v1.EnvVarArgs(name="MLFLOW_TRACKING_PASSWORD", value_from=from_secret("password")),
        *aws_runtime_environment(shared.region),
    ]


def catalogue_entry_variable(entry: CatalogueEntry) -> k8s.core.v1.EnvVarArgs:
    """The model's catalogue entry for the pod: the images hold no catalogue, so a new model rebuilds none."""
    return k8s.core.v1.EnvVarArgs(name=ENTRY_VARIABLE, value=entry_to_json(entry))


def model_labels(app: str, entry: CatalogueEntry) -> dict[str, str]:
    """Labels of one model's workload: its app name, and the model, which selects all of its objects."""
    return {"app.kubernetes.io/name": app, "mlops.platform/model": entry.name}
