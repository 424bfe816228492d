"""The whole platform for one environment: the one component `__main__.py` creates."""

from __future__ import annotations

from collections.abc import Iterable

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from infra.alert_routing import AlertRouting, AlertRoutingArgs
from infra.alert_topic import AlertTopic, AlertTopicArgs
from infra.cluster import Cluster, ClusterArgs
from infra.cluster_addons import ClusterAddons, ClusterAddonsArgs
from infra.config import DatabaseConfig, PlatformConfig
from infra.container_image import ContainerImage, ContainerImageArgs, ImageSpec
from infra.database import Database, DatabaseArgs, Engine
from infra.dataset_seed import DatasetSeed, DatasetSeedArgs
from infra.encryption import EncryptionKeys, EncryptionKeysArgs
from infra.gpu_metrics import GpuMetrics, GpuMetricsArgs
from infra.kubeflow_pipelines import KubeflowPipelines, KubeflowPipelinesArgs
from infra.model import Model, ModelArgs
from infra.monitoring_stack import MonitoringStack, MonitoringStackArgs
from infra.network import Network, NetworkArgs
from infra.pod_security import platform_namespace
from infra.secure_bucket import SecureBucket, SecureBucketArgs
from infra.serving_autoscaler import ServingAutoscaler, ServingAutoscalerArgs
from infra.shared_services import SharedServices, TrackingClient, WorkloadImages
from infra.tracking_server import TrackingServer, TrackingServerArgs
from infra.webhook_order import after_controllers
from pipelines.contract import (
    TRACKING_SECRET_NAME,
    TRAINING_DOCKERFILE,
    TRAINING_IMAGE_SOURCES,
    compiled_pipeline_path,
)
from workloads import catalogue

# What each bucket holds; the names are also the keys of `Platform.buckets`.
BUCKET_PURPOSES = ("artifacts", "datasets", "predictions", "labels", "reports")

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
        "workloads/settings.py",
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
        "workloads/object_store.py",
        "workloads/keyed_rows.py",
        "workloads/request_id.py",
        "workloads/settings.py",
        "workloads/labels/__init__.py",
        "workloads/labels/feedback.py",
        "workloads/labels/record.py",
        "workloads/labels/resolve.py",
        "workloads/labels/store.py",
        "workloads/serving/__init__.py",
        "workloads/serving/service.py",
        "workloads/serving/settings.py",
        "workloads/serving/device.py",
        "workloads/serving/device_metrics.py",
        "workloads/serving/inputs.py",
        "workloads/serving/logged_images.py",
        "workloads/serving/model_source.py",
        "workloads/serving/prediction_log.py",
        "workloads/serving/request_guard.py",
        "workloads/serving/request_timeout.py",
    ),
)
# The drift job also compiles and submits a retraining run, hence the pipeline modules (and what
# their step functions import, although those run in the training image). The quality job and the
# labelling queue run in the same image: they read the same stores, plus the labels store
# (workloads/labels) the service writes.
DRIFT_IMAGE = ImageSpec(
    name="drift-job",
    dockerfile="monitoring/Dockerfile",
    sources=(
        "monitoring/__init__.py",
        "monitoring/actions.py",
        "monitoring/alerts.py",
        "monitoring/comparison.py",
        "monitoring/day_drift.py",
        "monitoring/drift.py",
        "monitoring/entrypoint.py",
        "monitoring/errors.py",
        "monitoring/job.py",
        "monitoring/job_metrics.py",
        "monitoring/labelling_candidates.py",
        "monitoring/labelling_ledger.py",
        "monitoring/labelling_queue.py",
        "monitoring/labelling_queue_settings.py",
        "monitoring/output_shift.py",
        "monitoring/performance_estimate.py",
        "monitoring/quality_estimate.py",
        "monitoring/quality_job.py",
        "monitoring/quality_join.py",
        "monitoring/quality_metrics.py",
        "monitoring/quality_report.py",
        "monitoring/quality_settings.py",
        "monitoring/reference_groups.py",
        "monitoring/reference_loader.py",
        "monitoring/retrain.py",
        "monitoring/retrain_data.py",
        "monitoring/run_record.py",
        "monitoring/settings.py",
        "monitoring/store.py",
        "monitoring/summary.py",
        "monitoring/window.py",
        "pipelines/__init__.py",
        "pipelines/components.py",
        "pipelines/contract.py",
        "pipelines/kfp_types.py",
        "pipelines/local.py",
        "pipelines/remote.py",
        "pipelines/steps.py",
        "pipelines/training_pipeline.py",
        "workloads/__init__.py",
        "workloads/catalogue_entry.py",
        "workloads/datasets",
        "workloads/features.py",
        "workloads/keyed_rows.py",
        "workloads/labelled_datasets.py",
        "workloads/object_store.py",
        "workloads/reference.py",
        "workloads/request_id.py",
        "workloads/settings.py",
        "workloads/training.py",
        "workloads/training_batches.py",
        "workloads/labels/__init__.py",
        "workloads/labels/label_studio_tasks.py",
        "workloads/labels/record.py",
        "workloads/labels/resolve.py",
        "workloads/labels/store.py",
        "workloads/serving/__init__.py",
        "workloads/serving/logged_images.py",
        "workloads/serving/prediction_log.py",
        "workloads/serving/settings.py",
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
# The serving Dockerfile with torch's CUDA build (pip's configured index, as for training-gpu), for
# models a stack serves on a GPU pool (`gpuPool`): with the CPU wheel of SERVING_IMAGE such a pod
# would request a GPU and infer on its CPU. Several GB larger, so built only when a stack has one.
SERVING_GPU_IMAGE = ImageSpec(
    name="model-serving-gpu",
    dockerfile=SERVING_IMAGE.dockerfile,
    sources=SERVING_IMAGE.sources,
    build_args={"TORCH_INDEX_URL": ""},
)
IMAGES = (
    TRACKING_SERVER_IMAGE,
    SERVING_IMAGE,
    SERVING_GPU_IMAGE,
    DRIFT_IMAGE,
    TRAINING_IMAGE,
    TRAINING_GPU_IMAGE,
)
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
    addons: ClusterAddons
    buckets: dict[str, SecureBucket]
    tracking_database: Database
    pipelines_database: Database
    tracking: TrackingServer
    pipelines: KubeflowPipelines
    alerts_topic: AlertTopic
    """The stack's SNS topic for model and drift alerts (subscribe to it: README, 'Alerts')."""
    monitoring: MonitoringStack
    models: dict[str, Model]
    datasets_store: pulumi.Output[str]
    """`s3://<datasets bucket>/datasets`: what the training runs read (`--store` of a `--host` run)."""
    training_image: pulumi.Input[str] | None
    """The CPU training image by digest (`--image` of a `--host` run); None when no model is enabled."""
    gpu_training_image: pulumi.Input[str] | None
    """Its CUDA variant, for models that train on the GPU pool; None when the stack has none."""

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:platform:Platform", name, None, with_aws_provider(name, config, opts))
        self.keys = self._create_keys(name, config)
        self.network = self._create_network(name, config)
        self.cluster = self._create_cluster(name, config)
        addons = self._create_addons(name, config)
        self.addons = addons
        # Everything on the cluster goes through its provider, and what the add-ons' webhooks and
        # controllers handle waits for them (infra/webhook_order.py).
        on_cluster = pulumi.ResourceOptions(
            parent=self,
            providers={"kubernetes": self.cluster.provider},
            transformations=[after_controllers([addons])],
        )
        self.buckets = {purpose: self._create_bucket(name, purpose, config) for purpose in BUCKET_PURPOSES}
        self.tracking_database = self._create_tracking_database(name, config)
        self.pipelines_database = self._create_pipelines_database(name, config)
        self.tracking = self._create_tracking(name, config, on_cluster)
        self.pipelines = self._create_pipelines(name, config, addons, on_cluster)
        self.alerts_topic = AlertTopic(
            f"{name}-alerts-topic",
            AlertTopicArgs(name=f"{config.name_prefix}-model-alerts", kms_key_arn=self.keys.alerts.arn),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.monitoring = self._create_monitoring(name, config, addons, on_cluster)
        if config.gpu_node_pools:
            GpuMetrics(
                f"{name}-gpu-metrics",
                GpuMetricsArgs(monitoring=self.monitoring, install_after=(addons,)),
                opts=on_cluster,
            )
        self.datasets_store = self.buckets["datasets"].s3_uri(DATASETS_PREFIX)

        entries = {model_name: catalogue.get(model_name) for model_name in sorted(config.models)}
        images = self._create_workload_images(name, config, entries) if entries else None
        self.training_image = images.training if images else None
        self.gpu_training_image = images.gpu_training if images else None
        self.models = self._create_models(name, config, entries, images, on_cluster) if images else {}

        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "buckets": {purpose: bucket.name for purpose, bucket in self.buckets.items()},
                "trackingUrl": self.tracking.internal_url,
                "pipelinesApiUrl": self.pipelines.api_url,
                "grafanaUrl": self.monitoring.grafana_url,
                "alertsTopicArn": self.alerts_topic.arn,
                "datasetsStore": self.datasets_store,
                "models": {model_name: model.service_url for model_name, model in self.models.items()},
            }
        )

    def _create_keys(self, name: str, config: PlatformConfig) -> EncryptionKeys:
        return EncryptionKeys(
            f"{name}-keys",
            EncryptionKeysArgs(
                alias_prefix=config.name_prefix,
                deletion_window_days=30 if config.is_production else 7,
                retain_on_delete=config.data_survives_destroy,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_network(self, name: str, config: PlatformConfig) -> Network:
        return Network(
            f"{name}-network",
            NetworkArgs(
                cidr=config.vpc_cidr,
                availability_zone_count=config.availability_zone_count,
                nat_gateway_per_az=config.nat_gateways == "perAz",
                cluster_name=config.name_prefix,
                region=config.region,
                flow_log_retention_days=log_retention_days(config),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_cluster(self, name: str, config: PlatformConfig) -> Cluster:
        return Cluster(
            f"{name}-eks",
            ClusterArgs(
                cluster_name=config.name_prefix,
                kubernetes_version=config.kubernetes_version,
                network=self.network,
                secrets_key=self.keys.eks_secrets,
                endpoint_public=config.cluster_endpoint_public,
                public_access_cidrs=list(config.cluster_public_access_cidrs),
                admin_role_arns=list(config.cluster_admin_role_arns),
                system_pool=config.system_node_pool,
                gpu_pools=list(config.gpu_node_pools),
                log_retention_days=log_retention_days(config),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_addons(self, name: str, config: PlatformConfig) -> ClusterAddons:
        return ClusterAddons(
            f"{name}-addons",
            ClusterAddonsArgs(
                cluster=self.cluster,
                kubernetes_version=config.kubernetes_version,
                region=config.region,
                vpc_id=self.network.vpc_id,
                gpu_pools=tuple(config.gpu_node_pools),
            ),
            opts=pulumi.ResourceOptions(parent=self, providers={"kubernetes": self.cluster.provider}),
        )

    def _create_bucket(self, name: str, purpose: str, config: PlatformConfig) -> SecureBucket:
        return SecureBucket(
            f"{name}-{purpose}",
            SecureBucketArgs(
                purpose=purpose,
                kms_key_arn=self.keys.buckets.arn,
                noncurrent_version_retention_days=config.noncurrent_version_retention_days,
                # Where the databases keep a final snapshot, the buckets keep their objects too.
                force_destroy=not config.data_survives_destroy,
                current_version_expiration_days=config.prediction_retention_days if purpose == "predictions" else None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _database_args(
        self,
        config: PlatformConfig,
        engine: Engine,
        size: DatabaseConfig,
        database_name: str,
        master_username: str,
        master_password: pulumi.Output[str] | None = None,
        native_password_auth: bool = False,
    ) -> DatabaseArgs:
        """Both databases: in the private subnets, reachable from the cluster only, protected per stack."""
        return DatabaseArgs(
            engine=engine,
            database_name=database_name,
            master_username=master_username,
            size=size,
            vpc_id=self.network.vpc_id,
            subnet_ids=list(self.network.private_subnet_ids),
            allowed_security_group_id=self.cluster.security_group_id,
            kms_key_arn=self.keys.databases.arn,
            multi_az=config.database_multi_az,
            deletion_protection=config.database_deletion_protection,
            backup_retention_days=config.database_backup_retention_days,
            final_snapshot=config.data_survives_destroy,
            master_password=master_password,
            native_password_auth=native_password_auth,
        )

    def _create_tracking_database(self, name: str, config: PlatformConfig) -> Database:
        return Database(
            f"{name}-tracking",
            self._database_args(config, "postgres", config.postgres, database_name="mlflow", master_username="mlflow"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_pipelines_database(self, name: str, config: PlatformConfig) -> Database:
        child = pulumi.ResourceOptions(parent=self)
        # KFP reads its database password from a Kubernetes Secret and cannot follow an RDS rotation,
        # so this one is a generated Pulumi secret (encrypted in state) rather than RDS-managed.
        password = random.RandomPassword(f"{name}-pipelines-db-password", length=32, special=False, opts=child)
        args = self._database_args(
            config,
            "mysql",
            config.mysql,
            database_name="mlpipeline",
            master_username="kfp",
            master_password=password.result,
            # KFP's metadata server (MLMD 1.14) speaks only mysql_native_password: infra/database.py.
            native_password_auth=True,
        )
        return Database(f"{name}-pipelines", args, opts=child)

    def _create_tracking(self, name: str, config: PlatformConfig, on_cluster: pulumi.ResourceOptions) -> TrackingServer:
        return TrackingServer(
            f"{name}-tracking",
            TrackingServerArgs(
                image=self._image(name, TRACKING_SERVER_IMAGE, config).ref,
                identity=self.cluster.identity,
                region=config.region,
                vpc_cidr=config.vpc_cidr,
                artifacts=self.buckets["artifacts"],
                database=self.tracking_database,
                replicas=config.tracking.replicas,
                internal_ingress=config.tracking.internal_ingress,
                disruption_budget=config.is_production,
            ),
            opts=on_cluster,
        )

    def _create_pipelines(
        self, name: str, config: PlatformConfig, addons: ClusterAddons, on_cluster: pulumi.ResourceOptions
    ) -> KubeflowPipelines:
        return KubeflowPipelines(
            f"{name}-pipelines",
            KubeflowPipelinesArgs(
                region=config.region,
                artifacts=self.buckets["artifacts"],
                datasets=self.buckets["datasets"],
                database=self.pipelines_database,
                identity=self.cluster.identity,
                install_after=(addons,),
            ),
            opts=on_cluster,
        )

    def _create_monitoring(
        self, name: str, config: PlatformConfig, addons: ClusterAddons, on_cluster: pulumi.ResourceOptions
    ) -> MonitoringStack:
        return MonitoringStack(
            f"{name}-monitoring",
            MonitoringStackArgs(
                prometheus=config.monitoring,
                models_namespace=MODELS_NAMESPACE,
                models=tuple(catalogue.get(model_name) for model_name in sorted(config.models)),
                vpc_cidr=config.vpc_cidr,
                # Grafana is reached as the MLflow UI is, in every stack.
                internal_ingress=config.tracking.internal_ingress,
                retain_volumes=config.data_survives_destroy,
                install_after=(addons,),
                alerts_topic=self.alerts_topic,
                identity=self.cluster.identity,
                gpu_exporters=bool(config.gpu_node_pools),
            ),
            opts=on_cluster,
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

    def _create_workload_images(
        self, name: str, config: PlatformConfig, entries: dict[str, catalogue.CatalogueEntry]
    ) -> WorkloadImages:
        """The models' images; each CUDA variant only where a model trains, or is served, on a GPU pool."""
        trains_on_gpu = any(entry.gpu for entry in entries.values())
        serves_on_gpu = any(config.models[model].gpu_pool is not None for model in entries)
        return WorkloadImages(
            serving=self._image(name, SERVING_IMAGE, config).ref,
            drift=self._image(name, DRIFT_IMAGE, config).ref,
            training=self._image(name, TRAINING_IMAGE, config).ref,
            gpu_training=self._image(name, TRAINING_GPU_IMAGE, config).ref if trains_on_gpu else None,
            gpu_serving=self._image(name, SERVING_GPU_IMAGE, config).ref if serves_on_gpu else None,
        )

    def _create_models(
        self,
        name: str,
        config: PlatformConfig,
        entries: dict[str, catalogue.CatalogueEntry],
        images: WorkloadImages,
        on_cluster: pulumi.ResourceOptions,
    ) -> dict[str, Model]:
        """One Model per catalogue entry the stack enables, and what they share."""
        namespace = platform_namespace(f"{name}-models-namespace", MODELS_NAMESPACE, on_cluster)
        self._create_tracking_clients(name, namespace, on_cluster)
        shared = SharedServices(
            identity=self.cluster.identity,
            region=config.region,
            namespace=MODELS_NAMESPACE,
            tracking=TrackingClient(
                url=self.tracking.internal_url,
                namespace=self.tracking.namespace,
                credentials_secret=TRACKING_CLIENT_SECRET,
            ),
            pipelines=self.pipelines,
            datasets=self._create_dataset_seed(name, config, entries.values(), images.training, on_cluster),
            predictions=self.buckets["predictions"],
            labels=self.buckets["labels"],
            reports=self.buckets["reports"],
            images=images,
            monitoring=self.monitoring,
            alerts_topic=self.alerts_topic,
            serving_autoscaler=self._create_serving_autoscaler(name, config, on_cluster),
        )
        # The model alerts' route to the drift alerts' webhook, whose Secret is in this namespace.
        AlertRouting(
            f"{name}-alert-routing",
            AlertRoutingArgs(
                namespace=MODELS_NAMESPACE,
                waits_for=(namespace, self.monitoring),
                sns_topic_arn=self.alerts_topic.arn,
                region=config.region,
            ),
            opts=on_cluster,
        )
        in_models_namespace = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[namespace]))
        return {
            model_name: Model(
                f"{name}-model-{model_name}",
                ModelArgs(
                    entry=entry,
                    settings=config.models[model_name],
                    shared=shared,
                    compiled_pipeline=compiled_pipeline_path(model_name).read_text(),
                ),
                opts=in_models_namespace,
            )
            for model_name, entry in entries.items()
        }

    def _create_serving_autoscaler(
        self, name: str, config: PlatformConfig, on_cluster: pulumi.ResourceOptions
    ) -> ServingAutoscaler | None:
        """KEDA, where some model serves on a GPU pool (the others scale on CPU with a plain HPA)."""
        if all(settings.gpu_pool is None for settings in config.models.values()):
            return None
        return ServingAutoscaler(
            f"{name}-serving-autoscaler",
            ServingAutoscalerArgs(vpc_cidr=config.vpc_cidr, install_after=(self.addons,)),
            opts=on_cluster,
        )

    def _create_tracking_clients(
        self, name: str, models_namespace: k8s.core.v1.Namespace, on_cluster: pulumi.ResourceOptions
    ) -> None:
        """Clients of the tracking server in other namespaces get its credentials through their own Secret."""
        k8s.core.v1.Secret(
            f"{name}-models-tracking-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TRACKING_CLIENT_SECRET, namespace=MODELS_NAMESPACE),
            type="Opaque",
            string_data={"username": self.tracking.admin_username, "password": self.tracking.admin_password},
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[models_namespace])),
        )
        k8s.core.v1.Secret(
            f"{name}-pipelines-tracking-client",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TRACKING_SECRET_NAME, namespace=self.pipelines.namespace),
            type="Opaque",
            string_data={
                "tracking_uri": self.tracking.internal_url,
                "username": self.tracking.admin_username,
                "password": self.tracking.admin_password,
            },
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.pipelines])),
        )

    def _create_dataset_seed(
        self,
        name: str,
        config: PlatformConfig,
        entries: Iterable[catalogue.CatalogueEntry],
        training_image: pulumi.Input[str],
        on_cluster: pulumi.ResourceOptions,
    ) -> DatasetSeed:
        """Runs in the pipelines' namespace, once KFP is there, with the training image's dataset code."""
        return DatasetSeed(
            f"{name}-dataset-seed",
            DatasetSeedArgs(
                datasets=sorted({entry.dataset for entry in entries}),
                bucket=self.buckets["datasets"],
                prefix=DATASETS_PREFIX,
                image=training_image,
                namespace=self.pipelines.namespace,
                identity=self.cluster.identity,
                region=config.region,
            ),
            opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[self.pipelines])),
        )


def log_retention_days(config: PlatformConfig) -> int:
    """Control-plane and flow logs: a year in production, 90 days elsewhere."""
    return 365 if config.is_production else 90


def with_aws_provider(name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None) -> pulumi.ResourceOptions:
    """One explicit provider for the stack's region and tags; the platform's children inherit it."""
    provider = aws.Provider(
        f"{name}-aws",
        region=config.region,
        default_tags=aws.ProviderDefaultTagsArgs(tags=default_tags(config)),
    )
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(providers={"aws": provider}))
