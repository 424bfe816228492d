"""The first version of each dataset the stack's models train on, written by `pulumi up`.

A new platform's datasets bucket is empty, so the first training runs (which the schedules start
at once) would fail at fetch. The catalogue's datasets are built by code, so a Job in the training
image snapshots v1 of each one that has no version yet (`python -m pipelines.dataset_seed`) and
leaves the others alone; the training schedules wait for it. Its IRSA role may read and add
objects under those datasets' prefixes only: never delete, never touch another prefix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.iam_policies import Statement, bucket_prefix_statements
from infra.network_rules import IRSA_TOKEN_SKIP, dns_egress, egress_only, https_egress
from infra.pod_security import container_security_context, pod_security_context, tmp_mount, tmp_volume
from infra.workload_role import ClusterIdentity, WorkloadRoleArgs, service_account_with_role

APP = "dataset-seed"


@dataclass(frozen=True)
class DatasetSeedArgs:
    datasets: Sequence[str]
    """Dataset names (`workloads.datasets.BUILDERS`) of the models the stack enables."""
    store: pulumi.Input[str]
    """`s3://<datasets bucket>/<prefix>`: what the training runs read."""
    store_prefix: str
    """The prefix of `store` inside the bucket (e.g. `datasets`)."""
    bucket_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    image: pulumi.Input[str]
    """The training image (it has `pipelines` and the dataset code)."""
    namespace: str
    identity: ClusterIdentity
    region: str


class DatasetSeed(pulumi.ComponentResource):
    """IRSA role, ServiceAccount, NetworkPolicy and the idempotent Job that seeds the datasets."""

    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: DatasetSeedArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:pipelines:DatasetSeed", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        datasets = sorted(set(args.datasets))
        labels = {"app.kubernetes.io/name": APP}
        statements: list[Statement] = []
        for dataset in datasets:
            statements += bucket_prefix_statements(
                args.bucket_arn,
                f"{args.store_prefix}/{dataset}",
                args.kms_key_arn,
                actions=("s3:GetObject", "s3:PutObject"),
                sid="".join(part.capitalize() for part in dataset.split("-")),
            )
        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.identity, namespace=args.namespace, service_account=APP, policy_statements=statements
            ),
            labels,
            child,
        )
        network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=labels),
            spec=egress_only(labels, [dns_egress(), https_egress()]),  # S3 and STS, over TLS
            opts=child,
        )
        # A Job's template cannot change: a new image or dataset list is a new Job (the old one,
        # finished, is deleted). The run itself is idempotent, so a new Job only adds what is missing.
        job_name = pulumi.Output.all(args.image, args.store).apply(
            lambda values: f"{APP}-{hashlib.sha256(repr((values, datasets)).encode()).hexdigest()[:12]}"
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job_name, namespace=args.namespace, labels=labels, annotations=IRSA_TOKEN_SKIP
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                active_deadline_seconds=900,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=APP,
                        automount_service_account_token=True,  # the IRSA web identity needs it
                        restart_policy="Never",
                        security_context=pod_security_context(),
                        volumes=[tmp_volume("2Gi")],
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="seed",
                                image=args.image,
                                command=["python", "-m", "pipelines.dataset_seed"],
                                args=[*datasets, "--store", args.store],
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="AWS_REGION", value=args.region),
                                    k8s.core.v1.EnvVarArgs(name="AWS_DEFAULT_REGION", value=args.region),
                                    k8s.core.v1.EnvVarArgs(name="TMPDIR", value="/tmp"),
                                ],
                                volume_mounts=[tmp_mount()],
                                security_context=container_security_context(),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    requests={"cpu": "250m", "memory": "512Mi"},
                                    limits={"cpu": "1", "memory": "2Gi"},
                                ),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[network_policy]),
        )
        self.register_outputs({})
