"""One model's daily quality job: a CronJob running `python -m monitoring.quality_job <model>`.

It reads the model's prefix of the predictions and labels buckets, writes `quality.json` (and the
alert state it shares with the drift job) under its prefix of the reports bucket, and alerts through
the drift job's channels: the optional webhook and the stack's SNS topic. It runs in the drift
image, an hour after the drift job.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.drift_monitor import DriftMonitorArgs, sns_topic_variable
from infra.hardened_workload import WorkloadContainer, WorkloadPod
from infra.iam_policies import bucket_prefix_statements
from infra.monitoring_job import WINDOW_JOB_COMPUTE, DailyJob, declare_job, pushgateway_variable, webhook_url_variable
from infra.network_rules import pipelines_api_egress
from infra.retrain_access import as_environment, retrain_data_policy
from infra.shared_services import SharedServices, catalogue_entry_variable, model_labels, tracking_client_environment
from monitoring.quality_settings import QualityVariables
from monitoring.settings import DriftVariables
from workloads.catalogue_entry import CatalogueEntry

DELAY_AFTER_DRIFT_HOURS = 1
"""Both jobs write the model's alert state in the reports store; an hour apart they never race on it."""


@dataclass(frozen=True)
class QualityMonitorArgs:
    drift: DriftMonitorArgs
    """The model's drift job. The quality job follows it: the same entry and services, an hour after
    its schedule, and where it may retrain, with its trigger's settings (a measured drop retrains like
    drift): then it may submit training runs to the KFP API and add dataset versions too."""


def after_drift(drift_schedule: str) -> str:
    """The drift schedule an hour later. Its minute and hour must be plain numbers; a schedule that
    would cross midnight must run every day (a later hour on another day would not be after it)."""
    minute, hour, *days = drift_schedule.split()
    if not (minute.isdigit() and hour.isdigit()) or len(days) != 3:
        raise ValueError(f"drift schedule {drift_schedule!r}: the quality job needs a fixed minute and hour")
    later = int(hour) + DELAY_AFTER_DRIFT_HOURS
    if later > 23 and days != ["*", "*", "*"]:
        raise ValueError(f"drift schedule {drift_schedule!r}: an hour later is another day, which it may skip")
    return " ".join([minute, str(later % 24), *days])


def quality_policy(entry: CatalogueEntry, shared: SharedServices) -> list[dict]:
    """Read the model's prefix of the predictions and labels buckets; read and write its reports prefix
    (`quality.json`, and the alert state file it reads before it writes); publish to the alert topic."""
    model, read = entry.name, ("s3:GetObject",)
    predictions, labels, reports = shared.predictions, shared.labels, shared.reports
    return [
        *bucket_prefix_statements(predictions.arn, model, predictions.kms_key_arn, actions=read, sid="Predictions"),
        *bucket_prefix_statements(labels.arn, model, labels.kms_key_arn, actions=read, sid="Labels"),
        *bucket_prefix_statements(
            reports.arn, model, reports.kms_key_arn, actions=("s3:GetObject", "s3:PutObject"), sid="Reports"
        ),
        # A degraded model alerts where its drift does (issue: "the same channels as drift").
        *(shared.alerts_topic.publish_statements() if shared.alerts_topic else []),
    ]


def quality_environment(shared: SharedServices) -> list[k8s.core.v1.EnvVarArgs]:
    """The three stores, the tracking client (validation accuracy comes from the registry), the
    webhook and the SNS topic. No catalogue entry: the job reads class names from the prediction log
    and the labels."""
    return [
        *tracking_client_environment(shared),
        k8s.core.v1.EnvVarArgs(name=DriftVariables.PREDICTIONS_STORE, value=shared.predictions.s3_uri()),
        k8s.core.v1.EnvVarArgs(name=QualityVariables.LABELS_STORE, value=shared.labels.s3_uri()),
        k8s.core.v1.EnvVarArgs(name=DriftVariables.REPORTS_STORE, value=shared.reports.s3_uri()),
        webhook_url_variable(),
        pushgateway_variable(),
        *sns_topic_variable(shared),
    ]


class QualityMonitor(pulumi.ComponentResource):
    """CronJob, IRSA role (read predictions and labels, write reports) and NetworkPolicy for one model."""

    schedule: str

    def __init__(self, name: str, args: QualityMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:QualityMonitor", name, None, opts)
        drift = args.drift
        entry, shared = drift.entry, drift.shared
        app = f"quality-{entry.name}"
        self.schedule = after_drift(drift.schedule)
        job = DailyJob(name, app, model_labels(app, entry), shared, self.schedule)
        statements = quality_policy(entry, shared)
        environment = quality_environment(shared)
        further_egress: list[k8s.networking.v1.NetworkPolicyEgressRuleArgs] = []
        if drift.may_retrain:  # the retrain needs the entry (its dataset, classes), the trigger's settings, the data
            statements += retrain_data_policy(entry, shared)
            environment += [catalogue_entry_variable(entry), *as_environment(dict(drift.settings))]
            further_egress.append(pipelines_api_egress(shared.pipelines.namespace))
        quality = WorkloadContainer(
            name="quality",
            image=shared.images.drift,
            command=["python", "-m", "monitoring.quality_job"],
            args=[entry.name],
            env=environment,
            compute=WINDOW_JOB_COMPUTE,
        )
        pod = WorkloadPod(container=quality, tmp_size="1Gi", irsa_service_account=app)
        declare_job(job, statements, pod, pulumi.ResourceOptions(parent=self), further_egress)
        self.register_outputs({"schedule": self.schedule})
