"""One model's daily labelling queue: a CronJob running `python -m monitoring.labelling_queue <model>`.

After the drift job (it reads the day's drift summary, so drifted days go first), beside the quality
job: it picks up to the entry's `labelling_budget` production images from the model's prediction
log, skips those already labelled (the labels bucket) or queued (its record in the reports bucket),
and writes the images, a Label Studio import file and the labelling interface under
`s3://<labels bucket>/labelling-queue/<model>/date=<day>/` — beside the labels they will become,
in the bucket that does not expire (the predictions bucket does, after the stack's retention).
A Label Studio project reads that prefix through an S3 source storage; its export comes back with
`mlops labels import`.

Its own role, not the quality job's: it writes where the quality job must not (the queue prefix,
the queue's record) and needs neither the tracking server nor the alert webhook. It may read the
model's prefix of the predictions, labels and reports buckets, and put objects only under
`labelling-queue/<model>/` of the labels bucket and `<model>/date=*/labelling-queue/` of the reports
bucket, with each bucket's KMS key; its NetworkPolicy admits nothing in and DNS and HTTPS out.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import Compute, WorkloadContainer, WorkloadPod, aws_runtime_environment
from infra.iam_policies import bucket_prefix_statements
from infra.monitoring_job import DailyJob, declare_job
from infra.shared_services import SharedServices, catalogue_entry_variable, model_labels
from monitoring.labelling_ledger import LEDGER_FOLDER
from monitoring.labelling_queue_settings import LabellingQueueVariables
from monitoring.quality_settings import QualityVariables
from monitoring.settings import DriftVariables
from workloads.catalogue_entry import CatalogueEntry

QUEUE_PREFIX = "labelling-queue"
"""Top-level prefix of the queues in the labels bucket: `labelling-queue/<model>/date=<day>/`."""


@dataclass(frozen=True)
class LabellingQueueArgs:
    entry: CatalogueEntry
    shared: SharedServices
    schedule: str
    """Five-field cron, UTC: after the drift job (the quality job's schedule)."""


def queue_policy(entry: CatalogueEntry, shared: SharedServices) -> list[dict]:
    model, read = entry.name, ("s3:GetObject",)
    predictions, labels, reports = shared.predictions, shared.labels, shared.reports
    return [
        *bucket_prefix_statements(predictions.arn, model, predictions.kms_key_arn, actions=read, sid="Predictions"),
        *bucket_prefix_statements(labels.arn, model, labels.kms_key_arn, actions=read, sid="Labels"),
        *bucket_prefix_statements(reports.arn, model, reports.kms_key_arn, actions=read, sid="Reports"),
        *bucket_prefix_statements(
            labels.arn, f"{QUEUE_PREFIX}/{model}", labels.kms_key_arn, actions=("s3:PutObject",), sid="Queue"
        ),
        {
            # The record of what was queued, per prediction day, beside the day's reports.
            "Sid": "QueueRecord",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": pulumi.Output.concat(reports.arn, f"/{model}/date=*/{LEDGER_FOLDER}/*"),
        },
        {
            "Sid": "QueueRecordKey",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey"],
            "Resource": reports.kms_key_arn,
        },
    ]


def queue_environment(entry: CatalogueEntry, shared: SharedServices) -> list[k8s.core.v1.EnvVarArgs]:
    """The stores, the queue's root in the labels bucket, and the entry (class names for the
    labelling interface)."""
    return [
        *aws_runtime_environment(shared.region),
        catalogue_entry_variable(entry),
        k8s.core.v1.EnvVarArgs(name=DriftVariables.PREDICTIONS_STORE, value=shared.predictions.s3_uri()),
        k8s.core.v1.EnvVarArgs(name=QualityVariables.LABELS_STORE, value=shared.labels.s3_uri()),
        k8s.core.v1.EnvVarArgs(name=DriftVariables.REPORTS_STORE, value=shared.reports.s3_uri()),
        k8s.core.v1.EnvVarArgs(
            name=LabellingQueueVariables.QUEUE_STORE,
            value=shared.labels.s3_uri(QUEUE_PREFIX),
        ),
    ]


class LabellingQueue(pulumi.ComponentResource):
    """CronJob, IRSA role (read predictions, labels and reports; write the queue) and NetworkPolicy for one model."""

    def __init__(self, name: str, args: LabellingQueueArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:LabellingQueue", name, None, opts)
        app = f"labelling-queue-{args.entry.name}"
        job = DailyJob(name, app, model_labels(app, args.entry), args.shared, args.schedule)
        queue = WorkloadContainer(
            name="labelling-queue",
            image=args.shared.images.drift,
            command=["python", "-m", "monitoring.labelling_queue"],
            # The budget is passed, not read from the entry's JSON: that carries the workload fields only.
            args=[args.entry.name, "--budget", str(args.entry.labelling_budget)],
            env=queue_environment(args.entry, args.shared),
            # Not measured in the cluster: it holds the window's small columns (a week of predictions)
            # and the chosen images only (at most the budget), never the log's images.
            compute=Compute(cpu="250m", memory="512Mi", cpu_limit="1", memory_limit="2Gi"),
        )
        pod = WorkloadPod(container=queue, tmp_size="256Mi", irsa_service_account=app)
        child = pulumi.ResourceOptions(parent=self)
        declare_job(job, queue_policy(args.entry, args.shared), pod, child, tracking=False, pushes_results=False)
        self.register_outputs({"schedule": args.schedule})
