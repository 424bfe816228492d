"""The whole platform for one environment: the one component `__main__.py` creates."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.cluster import Cluster, ClusterArgs
from infra.cluster_addons import ClusterAddons, ClusterAddonsArgs
from infra.config import ModelSettings, PlatformConfig
from infra.container_image import ContainerImage, ContainerImageArgs, ImageSpec
from infra.database import Database, DatabaseArgs
from infra.dataset_seed import DatasetSeed, DatasetSeedArgs
from infra.encryption import EncryptionKeys, EncryptionKeysArgs
from infra.kubeflow_pipelines import NAMESPACE as PIPELINES_NAMESPACE
from infra.kubeflow_pipelines import KubeflowPipelines, KubeflowPipelinesArgs
from infra.model import Model, ModelArgs, ModelPlan
from infra.model_service import ServingResources
from infra.network import Network, NetworkArgs
from infra.pod_security import namespace_labels
from infra.secure_bucket import SecureBucket, SecureBucketArgs
from infra.shared_services import SharedServices
from infra.tracking_server import NAMESPACE as TRACKING_NAMESPACE
from infra.tracking_server import TrackingServer, TrackingServerArgs
from infra.webhook_order import after_controllers
from pipelines.paths import (
    TRACKING_SECRET_NAME,
    TRAINING_DOCKERFILE,
    TRAINING_IMAGE_SOURCES,
    compiled_pipeline_path,
    render_with_image,
)
from workloads import catalogue

# What each bucket holds; the names are also the keys of `Platform.buckets`.
BUCKET_PURPOSES = ("artifacts", "datasets", "predictions", "reports")

# Workload images built by `pulumi up`: metadata only (paths), infra never imports workload code.
# Each spec's sources are its build context, exactly (infra/container_image.py): what its Dockerfile
# COPYs, and every module those import (tests/infra/test_image_context.py checks both). None holds
# `workloads/catalogue.py`: a pod gets its model's entry from the infra (workloads/catalogue_entry.py),
# so adding a model rebuilds no image and restarts no other model.
TRACKING_SERVER_IMAGE = ImageSpec(
    name="tracking-server",
    dockerfile="workloads/tracking/Dockerfile",
    sources=(
        "workloads/__init__.py",
        "workloads/tracking/__init__.py",
        "workloads/tracking/server.py",
        "workloads/tracking/mlflow_entrypoint.py",
        "workloads/tracking/app.py",
        "workloads/tracking/readiness.py",
        "workloads/tracking/credentials_hook.py",
        "workloads/tracking/database_credentials.py",
        "workloads/tracking/database_secret.py",
    ),
)
SERVING_IMAGE = ImageSpec(
    name="model-serving",
    dockerfile="workloads/serving/Dockerfile",
    sources=(
        "workloads/__init__.py",
        "workloads/catalogue_entry.py",
        "workloads/features.py",
        "workloads/models",
        "workloads/serving/__init__.py",
        "workloads/serving/service.py",
        "workloads/serving/settings.py",
        "workloads/serving/inputs.py",
        "workloads/serving/model_source.py",
        "workloads/serving/prediction_log.py",
        "workloads/serving/request_guard.py",
        "workloads/serving/request_timeout.py",
    ),
)
# The drift job also compiles and submits a retraining run, hence the pipeline modules (and what
# their step functions import, although those run in the training image).
DRIFT_IMAGE = ImageSpec(
    name="drift-job",
    dockerfile="monitoring/Dockerfile",
    sources=(
        "monitoring/__init__.py",
        "monitoring/alerts.py",
        "monitoring/drift.py",
        "monitoring/job.py",
        "monitoring/retrain.py",
        "monitoring/settings.py",
        "monitoring/store.py",
        "monitoring/window.py",
        "pipelines/__init__.py",
        "pipelines/components.py",
        "pipelines/kfp_types.py",
        "pipelines/local.py",
        "pipelines/paths.py",
        "pipelines/remote.py",
        "pipelines/steps.py",
        "pipelines/training_pipeline.py",
        "workloads/__init__.py",
        "workloads/catalogue_entry.py",
        "workloads/datasets.py",
        "workloads/features.py",
        "workloads/reference.py",
        "workloads/training.py",
        "workloads/tracking/__init__.py",
        "workloads/tracking/instrument.py",
        "workloads/tracking/registry.py",
    ),
)
# Training images stamp the commit of their sources: it becomes the `git.commit` lineage tag of
# every version trained on the cluster (the image has no .git to ask).
TRAINING_IMAGE = ImageSpec(
    name="training", dockerfile=TRAINING_DOCKERFILE, sources=TRAINING_IMAGE_SOURCES, stamps_source_commit=True
)
# The same Dockerfile with torch's CUDA build (pip's configured index), for models that train on the
# GPU pool: the CPU wheel of TRAINING_IMAGE would see no GPU there. Built only when a stack has one.
TRAINING_GPU_IMAGE = ImageSpec(
    name="training-gpu",
    dockerfile=TRAINING_DOCKERFILE,
    sources=TRAINING_IMAGE_SOURCES,
    build_args={"TORCH_INDEX_URL": ""},
    stamps_source_commit=True,
)
IMAGES = (TRACKING_SERVER_IMAGE, SERVING_IMAGE, DRIFT_IMAGE, TRAINING_IMAGE, TRAINING_GPU_IMAGE)
"""Every image a stack may build (`python -m infra.container_image` writes their dockerignores)."""
MODELS_NAMESPACE = "models"
DATASETS_PREFIX = "datasets"
"""Where in the datasets bucket the versions live (`s3://<bucket>/datasets/<dataset>/<version>/`)."""
TRACKING_CLIENT_SECRET = "tracking-client"


def default_tags(config: PlatformConfig) -> dict[str, str]:
    """Tags on every AWS resource: who owns it and which stack made it (cost reports group by these)."""
    return {
        "Project": "mlops-platform",
        "Environment": config.environment,
        "Stack": config.stack,
        "ManagedBy": "pulumi",
        **config.tags,
    }


class Platform(pulumi.ComponentResource):
    """Network, keys, buckets, databases and the EKS cluster with its add-ons, for one stack."""

    network: Network
    keys: EncryptionKeys
    cluster: Cluster
    buckets: dict[str, SecureBucket]
    tracking_database: Database
    pipelines_database: Database
    tracking: TrackingServer
    pipelines: KubeflowPipelines
    models: dict[str, Model]
    datasets_store: pulumi.Output[str]
    """`s3://<datasets bucket>/datasets`: what the training runs read (`--store` of a `--host` run)."""
    training_image: pulumi.Output[str] | None
    """The CPU training image by digest (`--image` of a `--host` run); None when no model is enabled."""
    gpu_training_image: pulumi.Output[str] | None
    """Its CUDA variant, for models that train on the GPU pool; None when the stack has none."""

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        # One explicit provider for the stack's region and tags; children inherit it from here.
        provider = aws.Provider(
            f"{name}-aws",
            region=config.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(config)),
        )
        super().__init__(
            "mlops:platform:Platform",
            name,
            None,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers={"aws": provider})),
        )
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = config.name_prefix
        prod = config.is_production
        log_retention_days = 365 if prod else 90

        self.keys = EncryptionKeys(
            f"{name}-keys",
            EncryptionKeysArgs(
                alias_prefix=config.name_prefix,
                deletion_window_days=30 if prod else 7,
                retain_on_delete=config.data_survives_destroy,
            ),
            opts=child,
        )
        self.network = Network(
            f"{name}-network",
            NetworkArgs(
                cidr=config.vpc_cidr,
                availability_zone_count=config.availability_zone_count,
                nat_gateway_per_az=config.nat_gateways == "perAz",
                cluster_name=cluster_name,
                region=config.region,
                flow_log_retention_days=log_retention_days,
            ),
            opts=child,
        )
        self.cluster = Cluster(
            f"{name}-eks",
            ClusterArgs(
                cluster_name=cluster_name,
                kubernetes_version=config.kubernetes_version,
                network=self.network,
                secrets_key=self.keys.eks_secrets,
                endpoint_public=config.cluster_endpoint_public,
                public_access_cidrs=list(config.cluster_public_access_cidrs),
                admin_role_arns=list(config.cluster_admin_role_arns),
                system_pool=config.system_node_pool,
                gpu_pools=list(config.gpu_node_pools),
                log_retention_days=log_retention_days,
            ),
            opts=child,
        )
        addons = ClusterAddons(
            f"{name}-addons",
            ClusterAddonsArgs(
                cluster=self.cluster,
                kubernetes_version=config.kubernetes_version,
                region=config.region,
                vpc_id=self.network.vpc_id,
            ),
            opts=pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.cluster.provider}),
        )
        # Everything on the cluster goes through its provider, and what the add-ons' webhooks and
        # controllers handle waits for them (infra/webhook_order.py).
        self._on_cluster = pulumi.ResourceOptions(
            parent=self,
            providers={"kubernetes": self.cluster.provider},
            transformations=[after_controllers([addons])],
        )

        self.buckets = {
            purpose: SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    purpose=purpose,
                    kms_key_arn=self.keys.buckets.arn,
                    noncurrent_version_retention_days=config.noncurrent_version_retention_days,
                    # Where the databases keep a final snapshot, the buckets keep their objects too.
                    force_destroy=not config.data_survives_destroy,
                    current_version_expiration_days=config.prediction_retention_days
                    if purpose == "predictions"
                    else None,
                ),
                opts=child,
            )
            for purpose in BUCKET_PURPOSES
        }

        database_common = {
            "vpc_id": self.network.vpc_id,
            "subnet_ids": list(self.network.private_subnet_ids),
            "allowed_security_group_id": self.cluster.security_group_id,
            "kms_key_arn": self.keys.databases.arn,
            "multi_az": config.database_multi_az,
            "deletion_protection": config.database_deletion_protection,
            "backup_retention_days": config.database_backup_retention_days,
            "final_snapshot": config.data_survives_destroy,
        }
        self.tracking_database = Database(
            f"{name}-tracking",
            DatabaseArgs(
                engine="postgres",
                database_name="mlflow",
                master_username="mlflow",
                size=config.postgres,
                **database_common,
            ),
            opts=child,
        )
        # KFP reads its database password from a Kubernetes Secret and cannot follow an RDS rotation,
        # so this one is a generated Pulumi secret (encrypted in state) rather than RDS-managed.
        pipelines_database_password = random.RandomPassword(
            f"{name}-pipelines-db-password", length=32, special=False, opts=child
        )
        self.pipelines_database = Database(
            f"{name}-pipelines",
            DatabaseArgs(
                engine="mysql",
                database_name="mlpipeline",
                master_username="kfp",
                size=config.mysql,
                master_password=pipelines_database_password.result,
                # KFP's metadata server (MLMD 1.14) speaks only mysql_native_password: infra/database.py.
                native_password_auth=True,
                **database_common,
            ),
            opts=child,
        )
        tracking_image = self._image(name, TRACKING_SERVER_IMAGE, config)
        self.tracking = TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                image=tracking_image.ref,
                identity=self.cluster.identity,
                region=config.region,
                vpc_cidr=config.vpc_cidr,
                artifacts_bucket_name=self.buckets["artifacts"].name,
                artifacts_bucket_arn=self.buckets["artifacts"].arn,
                buckets_kms_key_arn=self.keys.buckets.arn,
                database_address=self.tracking_database.address,
                database_port=self.tracking_database.port,
                database_name="mlflow",
                database_secret_arn=self.tracking_database.master_user_secret_arn,
                databases_kms_key_arn=self.keys.databases.arn,
                replicas=config.tracking.replicas,
                internal_ingress=config.tracking.internal_ingress,
                disruption_budget=prod,
            ),
            opts=self._on_cluster,
        )

        self.pipelines = KubeflowPipelines(
            f"{name}-pipelines",
            KubeflowPipelinesArgs(
                region=config.region,
                artifacts_bucket_name=self.buckets["artifacts"].name,
                artifacts_bucket_arn=self.buckets["artifacts"].arn,
                buckets_kms_key_arn=self.keys.buckets.arn,
                database_address=self.pipelines_database.address,
                database_port=self.pipelines_database.port,
                database_username="kfp",
                database_password=pipelines_database_password.result,
                identity=self.cluster.identity,
                datasets_bucket_arn=self.buckets["datasets"].arn,
                install_after=(addons,),
            ),
            opts=self._on_cluster,
        )

        self.datasets_store = pulumi.Output.concat("s3://", self.buckets["datasets"].name, f"/{DATASETS_PREFIX}")
        self.training_image = self.gpu_training_image = None
        self.models = self._models(name, config)

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "buckets": {purpose: bucket.name for purpose, bucket in self.buckets.items()},
            }
        )

    def _image(self, name: str, spec: ImageSpec, config: PlatformConfig) -> ContainerImage:
        return ContainerImage(
            f"{name}-{spec.name}-image",
            ContainerImageArgs(
                spec=spec,
                repository_prefix=config.name_prefix,
                kms_key_arn=self.keys.buckets.arn,
                # Where the databases may be deleted (dev), `pulumi destroy` deletes the repositories with
                # their images. Where they are protected (staging, prod) destroy stops at them, and the
                # registry that survives names versions trained and served by these images: keep them, as
                # a rebuild from git is not the same image (base images and unpinned dependencies move).
                force_delete=not config.database_deletion_protection,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _models(self, name: str, config: PlatformConfig) -> dict[str, Model]:
        """One Model per catalogue entry the stack enables, and what they share."""
        if not config.models:
            return {}
        on_cluster = self._on_cluster
        namespace = k8s.core.v1.Namespace(
            f"{name}-models-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=MODELS_NAMESPACE, labels=namespace_labels()),
            opts=on_cluster,
        )
        # Clients of the tracking server in other namespaces get its credentials through their own Secret.
        k8s.core.v1.Secret(
            f"{name}-models-tracking-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TRACKING_CLIENT_SECRET, namespace=MODELS_NAMESPACE),
            type="Opaque",
            string_data={"username": self.tracking.admin_username, "password": self.tracking.admin_password},
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        k8s.core.v1.Secret(
            f"{name}-pipelines-tracking-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TRACKING_SECRET_NAME, namespace=PIPELINES_NAMESPACE),
            type="Opaque",
            string_data={
                "tracking_uri": self.tracking.internal_url,
                "username": self.tracking.admin_username,
                "password": self.tracking.admin_password,
            },
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.pipelines])),
        )
        training_image = self._image(name, TRAINING_IMAGE, config)
        entries = {model_name: catalogue.get(model_name) for model_name in sorted(config.models)}
        gpu_training_image = (
            self._image(name, TRAINING_GPU_IMAGE, config).ref if any(entry.gpu for entry in entries.values()) else None
        )
        dataset_store = self.datasets_store
        self.training_image = training_image.ref
        dataset_seed = DatasetSeed(
            f"{name}-dataset-seed",
            DatasetSeedArgs(
                datasets=sorted({entry.dataset for entry in entries.values()}),
                store=dataset_store,
                store_prefix=DATASETS_PREFIX,
                bucket_arn=self.buckets["datasets"].arn,
                kms_key_arn=self.keys.buckets.arn,
                image=training_image.ref,
                namespace=PIPELINES_NAMESPACE,
                identity=self.cluster.identity,
                region=config.region,
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.pipelines])),
        )
        self.gpu_training_image = gpu_training_image
        shared = SharedServices(
            identity=self.cluster.identity,
            region=config.region,
            namespace=MODELS_NAMESPACE,
            tracking_url=self.tracking.internal_url,
            tracking_namespace=TRACKING_NAMESPACE,
            tracking_credentials_secret=TRACKING_CLIENT_SECRET,
            pipelines_api_url=self.pipelines.api_url,
            pipelines_namespace=PIPELINES_NAMESPACE,
            training_prerequisites=(self.pipelines, dataset_seed),
            predictions_bucket_name=self.buckets["predictions"].name,
            predictions_bucket_arn=self.buckets["predictions"].arn,
            reports_bucket_name=self.buckets["reports"].name,
            reports_bucket_arn=self.buckets["reports"].arn,
            buckets_kms_key_arn=self.keys.buckets.arn,
            serving_image=self._image(name, SERVING_IMAGE, config).ref,
            drift_image=self._image(name, DRIFT_IMAGE, config).ref,
            training_image=training_image.ref,
            gpu_training_image=gpu_training_image,
        )
        models: dict[str, Model] = {}
        for model_name, entry in entries.items():
            plan = model_plan(entry, config.models[model_name], shared, dataset_store)
            compiled = compiled_pipeline_path(model_name).read_text()
            models[model_name] = Model(
                f"{name}-model-{model_name}",
                ModelArgs(
                    plan=plan,
                    shared=shared,
                    pipeline_yaml=pulumi.Output.from_input(plan.training_image).apply(
                        lambda ref, text=compiled: render_with_image(text, ref)
                    ),
                ),
                opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace])),
            )
        return models


def model_plan(
    entry: catalogue.CatalogueEntry,
    settings: ModelSettings,
    shared: SharedServices,
    dataset_store: pulumi.Output[str],
) -> ModelPlan:
    """The catalogue entry's defaults, overridden by what the stack says for this model."""
    training_image = shared.training_image_for(entry.gpu)
    # The scheduled runs and the drift job's retrain runs get the same parameters: the cluster's
    # datasets store (a step pod has no other) and the stack's promotion setting.
    pipeline_parameters: dict[str, Any] = {"dataset_store": dataset_store, "auto_promote": settings.auto_promote}
    retrain: dict[str, pulumi.Input[str]] = {
        "MLOPS_DRIFT_RETRAIN": "kfp",
        "MLOPS_KFP_HOST": shared.pipelines_api_url,
        "MLOPS_TRAINING_IMAGE": training_image,
        "MLOPS_DRIFT_RETRAIN_ARGUMENTS": pulumi.Output.json_dumps(pipeline_parameters),
    }
    return ModelPlan(
        name=entry.name,
        pipeline_parameters=pipeline_parameters,
        training_image=training_image,
        training_schedule=settings.training_schedule or entry.training_schedule,
        drift_schedule=settings.drift_schedule or entry.drift_schedule,
        serving=ServingResources(cpu=entry.serving_cpu, memory=entry.serving_memory, gpu_pool=settings.gpu_pool),
        min_replicas=settings.min_replicas,
        max_replicas=settings.max_replicas,
        drift_settings=retrain if entry.retrain_on_drift else {"MLOPS_DRIFT_RETRAIN": "off"},
        retrain_on_drift=entry.retrain_on_drift,
    )
