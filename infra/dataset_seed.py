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

from infra.hardened_workload import (
    Compute,
    JobLimits,
    WorkloadContainer,
    WorkloadPod,
    aws_runtime_environment,
    job_spec,
)
from infra.iam_policies import Statement, bucket_prefix_statements
from infra.network_rules import IRSA_TOKEN_SKIP, dns_egress, egress_only, https_egress
from infra.secure_bucket import SecureBucket
from infra.workload_role import ClusterIdentity, WorkloadRoleArgs, service_account_with_role

APP = "dataset-seed"
LABELS = {"app.kubernetes.io/name": APP}


@dataclass(frozen=True)
class DatasetSeedArgs:
    datasets: Sequence[str]
    """Dataset names (`workloads.datasets.builders.BUILDERS`) of the models the stack enables."""
    bucket: SecureBucket
    """The datasets bucket."""
    prefix: str
    """Where in the bucket the versions live (`s3://<bucket>/<prefix>/<dataset>/<version>/`)."""
    image: pulumi.Input[str]
    """The training image (it has `pipelines` and the dataset code)."""
    namespace: str
    identity: ClusterIdentity
    region: str


def seed_policy(args: DatasetSeedArgs) -> list[Statement]:
    """Read and add objects under each dataset's prefix: never delete, never touch another prefix."""
    statements: list[Statement] = []
    for dataset in sorted(set(args.datasets)):
        statements += bucket_prefix_statements(
            args.bucket.arn,
            f"{args.prefix}/{dataset}",
            args.bucket.kms_key_arn,
            actions=("s3:GetObject", "s3:PutObject"),
            sid="".join(part.capitalize() for part in dataset.split("-")),
        )
    return statements


class DatasetSeed(pulumi.ComponentResource):
    """IRSA role, ServiceAccount, NetworkPolicy and the idempotent Job that seeds the datasets."""

    store: pulumi.Output[str]
    """`s3://<datasets bucket>/<prefix>`: what the training runs read."""
    bucket: SecureBucket
    """The datasets bucket (the retrain triggers add versions to it: `infra/retrain_access.py`)."""
    prefix: str
    job: k8s.batch.v1.Job

    def __init__(self, name: str, args: DatasetSeedArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:pipelines:DatasetSeed", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.store = args.bucket.s3_uri(args.prefix)
        self.bucket, self.prefix = args.bucket, args.prefix
        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.identity,
                namespace=args.namespace,
                service_account=APP,
                policy_statements=seed_policy(args),
            ),
            LABELS,
            child,
        )
        network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=APP, namespace=args.namespace, labels=LABELS),
            spec=egress_only(LABELS, [dns_egress(), https_egress()]),  # S3 and STS, over TLS
            opts=child,
        )
        self.job = self._create_job(name, args, pulumi.ResourceOptions(parent=self, depends_on=[network_policy]))
        self.register_outputs({"store": self.store, "job": self.job.metadata.apply(lambda m: m.name)})

    def _create_job(self, name: str, args: DatasetSeedArgs, opts: pulumi.ResourceOptions) -> k8s.batch.v1.Job:
        datasets = sorted(set(args.datasets))
        # A Job's template cannot change: a new image or dataset list is a new Job (the old one,
        # finished, is deleted). The run itself is idempotent, so a new Job only adds what is missing.
        job_name = pulumi.Output.all(args.image, self.store).apply(
            lambda values: f"{APP}-{hashlib.sha256(repr((values, datasets)).encode()).hexdigest()[:12]}"
        )
        seed = WorkloadContainer(
            name="seed",
            image=args.image,
            command=["python", "-m", "pipelines.dataset_seed"],
            args=[*datasets, "--store", self.store],
            env=aws_runtime_environment(args.region),
            compute=Compute(cpu="250m", memory="512Mi", cpu_limit="1", memory_limit="2Gi"),
        )
        pod = WorkloadPod(container=seed, tmp_size="2Gi", irsa_service_account=APP)
        return k8s.batch.v1.Job(
            f"{name}-job",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=job_name, namespace=args.namespace, labels=LABELS, annotations=IRSA_TOKEN_SKIP
            ),
            spec=job_spec(LABELS, pod, JobLimits(retries=3, deadline_seconds=900)),
            opts=opts,
        )
