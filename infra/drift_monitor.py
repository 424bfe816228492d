"""One model's daily drift job: a CronJob running `python -m monitoring.job --model <model>`.

It reads the model's prefix of the predictions bucket, writes its prefix of the reports bucket, and
alerts through a webhook whose URL comes from a Secret (an optional one: no URL, no webhook alert).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import Compute, JobLimits, WorkloadContainer, WorkloadPod, job_spec
from infra.iam_policies import bucket_prefix_statements
from infra.network_rules import (
    IRSA_TOKEN_SKIP,
    TRACKING_CREDENTIALS_SKIP,
    dns_egress,
    egress_only,
    https_egress,
    pipelines_api_egress,
    tracking_egress,
)
from infra.shared_services import SharedServices, catalogue_entry_variable, model_labels, tracking_client_environment
from infra.workload_role import WorkloadRoleArgs, service_account_with_role
from monitoring.settings import DriftVariables
from workloads.catalogue_entry import CatalogueEntry

ALERTS_SECRET = "drift-alerts"
"""Secret in the models namespace; key `webhook-url` (create it with kubectl or your secret store)."""
# A stuck run stops after an hour (with Forbid concurrency it would hold back the next day's); finished
# Jobs, and their pods' logs, go after three days.
DRIFT_JOB_LIMITS = JobLimits(retries=2, deadline_seconds=3600, ttl_seconds_after_finished=3 * 24 * 3600)


@dataclass(frozen=True)
class DriftMonitorArgs:
    entry: CatalogueEntry
    """The model's catalogue entry: the job compares its live inputs with the entry's reference."""
    shared: SharedServices
    schedule: str
    """Five-field cron, UTC."""
    settings: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Further plain job settings (thresholds, cooldown, retrain switch) as environment variables."""
    may_retrain: bool = False
    """The job may submit training runs to the KFP API (MLOPS_DRIFT_RETRAIN=kfp)."""


def drift_policy(args: DriftMonitorArgs) -> list[dict]:
    """Read the model's prefix of the predictions bucket; read and write its prefix of the reports bucket."""
    predictions, reports, model = args.shared.predictions, args.shared.reports, args.entry.name
    return [
        *bucket_prefix_statements(
            predictions.arn, model, predictions.kms_key_arn, actions=("s3:GetObject",), sid="Predictions"
        ),
        *bucket_prefix_statements(
            reports.arn, model, reports.kms_key_arn, actions=("s3:GetObject", "s3:PutObject"), sid="Reports"
        ),
    ]


class DriftMonitor(pulumi.ComponentResource):
    """CronJob, IRSA role (read predictions, write reports) and NetworkPolicy for one model."""

    schedule: str

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = f"drift-{args.entry.name}"
        labels = model_labels(app, args.entry)
        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.shared.identity,
                namespace=args.shared.namespace,
                service_account=app,
                policy_statements=drift_policy(args),
            ),
            labels,
            child,
        )
        self._create_cron_job(name, app, labels, args)
        self._create_network_policy(name, app, labels, args)
        self.schedule = args.schedule
        self.register_outputs({"schedule": self.schedule})

    @staticmethod
    def _environment(args: DriftMonitorArgs) -> list[k8s.core.v1.EnvVarArgs]:
        # Optional: without the Secret the job still runs and reports, it just cannot post to a webhook.
        webhook_url = k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=ALERTS_SECRET, key="webhook-url", optional=True)
        )
        return [
            *tracking_client_environment(args.shared),
            catalogue_entry_variable(args.entry),
            k8s.core.v1.EnvVarArgs(name=DriftVariables.PREDICTIONS_STORE, value=args.shared.predictions.s3_uri()),
            k8s.core.v1.EnvVarArgs(name=DriftVariables.REPORTS_STORE, value=args.shared.reports.s3_uri()),
            k8s.core.v1.EnvVarArgs(name=DriftVariables.WEBHOOK_URL, value_from=webhook_url),
            *(k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(args.settings.items())),
        ]

    def _create_cron_job(self, name: str, app: str, labels: dict[str, str], args: DriftMonitorArgs) -> None:
        drift = WorkloadContainer(
            name="drift",
            image=args.shared.images.drift,
            command=["python", "-m", "monitoring.job"],
            args=["--model", args.entry.name],
            env=self._environment(args),
            compute=Compute(cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi"),
        )
        pod = WorkloadPod(container=drift, tmp_size="4Gi", irsa_service_account=app)
        k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=app,
                namespace=args.shared.namespace,
                labels=labels,
                annotations={**IRSA_TOKEN_SKIP, **TRACKING_CREDENTIALS_SKIP},
            ),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                time_zone="Etc/UTC",
                # A slow day must not overlap the next one, and a missed start is not run hours late.
                concurrency_policy="Forbid",
                starting_deadline_seconds=3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels), spec=job_spec(labels, pod, DRIFT_JOB_LIMITS)
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_network_policy(self, name: str, app: str, labels: dict[str, str], args: DriftMonitorArgs) -> None:
        """Out: DNS, tracking and HTTPS (S3, STS, the webhook); the KFP API too where it may retrain."""
        egress = [dns_egress(), tracking_egress(args.shared.tracking.namespace), https_egress()]
        if args.may_retrain:
            egress.append(pipelines_api_egress(args.shared.pipelines.namespace))
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=egress_only(labels, egress),
            opts=pulumi.ResourceOptions(parent=self),
        )
