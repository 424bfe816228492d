"""What a monitoring job that may retrain needs beyond its own stores: the labels and the datasets.

A retrain trains on base + the labelled production images (`monitoring.retrain_data`), so before it
submits the run the job (the drift job on drift, the quality job on a measured drop) reads the
model's labels and adds a dataset version: it may read the model's prefix of the labels bucket, and
read and add objects under its dataset's prefix of the datasets bucket — never delete, never another
prefix (versions are immutable; `S3Store.publish` writes with If-None-Match). The run itself reads
the version from the same store (`dataset_store`, a pipeline parameter already).
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from infra.iam_policies import Statement, bucket_prefix_statements
from infra.shared_services import SharedServices
from monitoring.quality_settings import QualityVariables
from workloads.catalogue_entry import CatalogueEntry
from workloads.datasets.stores import STORE_ENVIRONMENT_VARIABLE


def retrain_data_policy(entry: CatalogueEntry, shared: SharedServices) -> list[Statement]:
    """Read the model's labels; read and add objects under its dataset's prefix of the datasets bucket."""
    labels, datasets = shared.labels, shared.datasets
    return [
        *bucket_prefix_statements(
            labels.arn, entry.name, labels.kms_key_arn, actions=("s3:GetObject",), sid="RetrainLabels"
        ),
        *bucket_prefix_statements(
            datasets.bucket.arn,
            f"{datasets.prefix}/{entry.dataset}",
            datasets.bucket.kms_key_arn,
            actions=("s3:GetObject", "s3:PutObject"),
            sid="RetrainDataset",
        ),
    ]


def retrain_data_settings(shared: SharedServices) -> dict[str, pulumi.Input[str]]:
    """Where the retrain reads the labels and adds the dataset version."""
    return {QualityVariables.LABELS_STORE: shared.labels.s3_uri(), STORE_ENVIRONMENT_VARIABLE: shared.datasets.store}


def as_environment(settings: dict[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    return [k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(settings.items())]
