"""One model's daily drift job: a CronJob running `python -m monitoring.job --model <model>`.

It reads the model's prefix of the predictions bucket, writes its prefix of the reports bucket, and
alerts through a webhook whose URL comes from a Secret (an optional one: no URL, no webhook alert).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import WorkloadContainer, WorkloadPod
from infra.iam_policies import bucket_prefix_statements
from infra.monitoring_job import WINDOW_JOB_COMPUTE, DailyJob, declare_job, pushgateway_variable, webhook_url_variable
from infra.network_rules import pipelines_api_egress
from infra.retrain_access import retrain_data_policy
from infra.shared_services import SharedServices, catalogue_entry_variable, model_labels, tracking_client_environment
from monitoring.settings import DriftVariables
from workloads.catalogue_entry import CatalogueEntry


@dataclass(frozen=True)
class DriftMonitorArgs:
    entry: CatalogueEntry
    """The model's catalogue entry: the job compares its live inputs with the entry's reference."""
    shared: SharedServices
    schedule: str
    """Five-field cron, UTC."""
    settings: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Further plain job settings (thresholds, cooldown, retrain switch) as environment variables."""
    may_retrain: bool = False
    """The job may submit training runs to the KFP API (MLOPS_DRIFT_RETRAIN=kfp)."""


def drift_policy(args: DriftMonitorArgs) -> list[dict]:
    """Read the model's prefix of the predictions bucket; read and write its prefix of the reports bucket;
    publish to the alert topic, and where it may retrain, read its labels and add versions of its dataset
    (`infra/retrain_access.py`)."""
    predictions, reports, model = args.shared.predictions, args.shared.reports, args.entry.name
    topic = args.shared.alerts_topic
    retrain = retrain_data_policy(args.entry, args.shared) if args.may_retrain else []
    return [
        *retrain,
        *bucket_prefix_statements(
            predictions.arn, model, predictions.kms_key_arn, actions=("s3:GetObject",), sid="Predictions"
        ),
        *bucket_prefix_statements(
            reports.arn, model, reports.kms_key_arn, actions=("s3:GetObject", "s3:PutObject"), sid="Reports"
        ),
        # Its alerts go to the stack's SNS topic too, where the model's service alerts go (infra/alert_topic.py).
        *(topic.publish_statements() if topic else []),
    ]


def sns_topic_variable(shared: SharedServices) -> list[k8s.core.v1.EnvVarArgs]:
    topic = shared.alerts_topic
    return [k8s.core.v1.EnvVarArgs(name=DriftVariables.SNS_TOPIC_ARN, value=topic.arn)] if topic else []


class DriftMonitor(pulumi.ComponentResource):
    """CronJob, IRSA role (read predictions, write reports) and NetworkPolicy for one model."""

    schedule: str

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:DriftMonitor", name, None, opts)
        app = f"drift-{args.entry.name}"
        job = DailyJob(name, app, model_labels(app, args.entry), args.shared, args.schedule)
        # The KFP API too where the job may retrain.
        retrain = [pipelines_api_egress(args.shared.pipelines.namespace)] if args.may_retrain else []
        declare_job(job, drift_policy(args), self._pod(app, args), pulumi.ResourceOptions(parent=self), retrain)
        self.schedule = args.schedule
        self.register_outputs({"schedule": self.schedule})

    @staticmethod
    def _environment(args: DriftMonitorArgs) -> list[k8s.core.v1.EnvVarArgs]:
        return [
            *tracking_client_environment(args.shared),
            catalogue_entry_variable(args.entry),
            k8s.core.v1.EnvVarArgs(name=DriftVariables.PREDICTIONS_STORE, value=args.shared.predictions.s3_uri()),
            k8s.core.v1.EnvVarArgs(name=DriftVariables.REPORTS_STORE, value=args.shared.reports.s3_uri()),
            webhook_url_variable(),
            pushgateway_variable(),
            *sns_topic_variable(args.shared),
            *(k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(args.settings.items())),
        ]

    def _pod(self, app: str, args: DriftMonitorArgs) -> WorkloadPod:
        drift = WorkloadContainer(
            name="drift",
            image=args.shared.images.drift,
            command=["python", "-m", "monitoring.job"],
            args=["--model", args.entry.name],
            env=self._environment(args),
            compute=WINDOW_JOB_COMPUTE,
        )
        return WorkloadPod(container=drift, tmp_size="4Gi", irsa_service_account=app)
