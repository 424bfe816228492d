"""One model's daily drift job: a CronJob running `python -m monitoring.job --model <model>`.

It reads the model's prefix of the predictions bucket, writes its prefix of the reports bucket, and
alerts through a webhook whose URL comes from a Secret (an optional one: no URL, no webhook alert).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

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
from infra.pod_security import container_security_context, pod_security_context, tmp_mount, tmp_volume
from infra.shared_services import SharedServices, tracking_client_environment
from infra.workload_role import WorkloadRoleArgs, service_account_with_role
from workloads import catalogue
from workloads.catalogue_entry import ENTRY_VARIABLE, entry_to_json

ALERTS_SECRET = "drift-alerts"
"""Secret in the models namespace; key `webhook-url` (create it with kubectl or your secret store)."""


@dataclass(frozen=True)
class DriftMonitorArgs:
    model: str
    shared: SharedServices
    schedule: str
    """Five-field cron, UTC."""
    settings: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Further plain job settings (thresholds, cooldown, retrain switch) as environment variables."""
    may_retrain: bool = False
    """The job may submit training runs to the KFP API (MLOPS_DRIFT_RETRAIN=kfp)."""


class DriftMonitor(pulumi.ComponentResource):
    """CronJob, IRSA role (read predictions, write reports) and NetworkPolicy for one model."""

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:monitoring:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        app = f"drift-{args.model}"
        labels = {"app.kubernetes.io/name": app, "mlops.platform/model": args.model}

        service_account_with_role(
            name,
            WorkloadRoleArgs(
                cluster=args.shared.identity,
                namespace=args.shared.namespace,
                service_account=app,
                policy_statements=[
                    *bucket_prefix_statements(
                        args.shared.predictions_bucket_arn,
                        args.model,
                        args.shared.buckets_kms_key_arn,
                        actions=("s3:GetObject",),
                        sid="Predictions",
                    ),
                    *bucket_prefix_statements(
                        args.shared.reports_bucket_arn,
                        args.model,
                        args.shared.buckets_kms_key_arn,
                        actions=("s3:GetObject", "s3:PutObject"),
                        sid="Reports",
                    ),
                ],
            ),
            labels,
            child,
        )

        environment = [
            *tracking_client_environment(args.shared),
            # The image has no catalogue (a new model must not rebuild it): the pod gets its model's entry.
            k8s.core.v1.EnvVarArgs(name=ENTRY_VARIABLE, value=entry_to_json(catalogue.get(args.model))),
            k8s.core.v1.EnvVarArgs(
                name="MLOPS_PREDICTIONS_STORE", value=pulumi.Output.concat("s3://", args.shared.predictions_bucket_name)
            ),
            k8s.core.v1.EnvVarArgs(
                name="MLOPS_REPORTS_STORE", value=pulumi.Output.concat("s3://", args.shared.reports_bucket_name)
            ),
            # Optional: without the Secret the job still runs and reports, it just cannot post to a webhook.
            k8s.core.v1.EnvVarArgs(
                name="MLOPS_DRIFT_WEBHOOK_URL",
                value_from=k8s.core.v1.EnvVarSourceArgs(
                    secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(
                        name=ALERTS_SECRET, key="webhook-url", optional=True
                    )
                ),
            ),
            *(k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in sorted(args.settings.items())),
        ]
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
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=2,
                        active_deadline_seconds=3600,
                        ttl_seconds_after_finished=3 * 24 * 3600,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                service_account_name=app,
                                automount_service_account_token=True,
                                restart_policy="Never",
                                security_context=pod_security_context(),
                                volumes=[tmp_volume("4Gi")],
                                containers=[
                                    k8s.core.v1.ContainerArgs(
                                        name="drift",
                                        image=args.shared.drift_image,
                                        command=["python", "-m", "monitoring.job"],
                                        args=["--model", args.model],
                                        env=environment,
                                        volume_mounts=[tmp_mount()],
                                        security_context=container_security_context(),
                                        resources=k8s.core.v1.ResourceRequirementsArgs(
                                            requests={"cpu": "500m", "memory": "1Gi"},
                                            limits={"cpu": "2", "memory": "4Gi"},
                                        ),
                                    )
                                ],
                            ),
                        ),
                    ),
                ),
            ),
            opts=child,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=app, namespace=args.shared.namespace, labels=labels),
            spec=egress_only(
                labels,
                [
                    dns_egress(),
                    tracking_egress(args.shared.tracking_namespace),
                    https_egress(),
                    *([pipelines_api_egress(args.shared.pipelines_namespace)] if args.may_retrain else []),
                ],
            ),
            opts=child,
        )
        self.register_outputs({"schedule": args.schedule})
