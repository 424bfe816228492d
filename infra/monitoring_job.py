"""What a model's daily monitoring CronJobs (the drift job, the quality job) share.

Both run once a day in the drift image as a hardened pod with an IRSA role scoped to the model's
prefixes, post alerts to the same optional webhook, push their results to the Pushgateway, and reach
DNS, the tracking server, HTTPS and the Pushgateway only. Each job says what differs: its command,
environment, role statements and any further egress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import Compute, JobLimits, WorkloadPod, job_spec
from infra.monitoring_names import NAME_LABEL, PUSHGATEWAY_POD, PUSHGATEWAY_PORT, PUSHGATEWAY_URL
from infra.monitoring_names import NAMESPACE as MONITORING_NAMESPACE
from infra.network_rules import (
    IRSA_TOKEN_SKIP,
    TRACKING_CREDENTIALS_SKIP,
    dns_egress,
    egress_only,
    https_egress,
    tracking_egress,
)
from infra.shared_services import SharedServices
from infra.workload_role import WorkloadRoleArgs, service_account_with_role
from monitoring.settings import DriftVariables

ALERTS_SECRET = "drift-alerts"
"""Secret in the models namespace; key `webhook-url` (create it with kubectl or your secret store)."""
# A stuck run stops after an hour (with Forbid concurrency it would hold back the next day's); finished
# Jobs, and their pods' logs, go after three days.
DAILY_JOB_POD_LABEL = {"mlops.platform/daily-job": "true"}
"""On the pods of every daily job that pushes its results (the drift and quality jobs): what the
Pushgateway admits (infra/pushgateway.py), whatever the model. The labelling queue pushes nothing."""
DAILY_JOB_LIMITS = JobLimits(retries=2, deadline_seconds=3600, ttl_seconds_after_finished=3 * 24 * 3600)
# The drift and quality jobs' pods. Not measured in the cluster: each holds a whole window of the model's
# prediction log in memory at once (the quality job MLOPS_QUALITY_LOOKBACK_DAYS days of it).
WINDOW_JOB_COMPUTE = Compute(cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi")


@dataclass(frozen=True)
class DailyJob:
    """One model's daily monitoring job, as its component declares it."""

    name: str
    """Prefix of the Pulumi resource names."""
    app: str
    """Name of the CronJob, its service account and NetworkPolicy (`drift-<model>`, `quality-<model>`)."""
    labels: dict[str, str]
    shared: SharedServices
    schedule: str
    """Five-field cron, UTC."""


def webhook_url_variable() -> k8s.core.v1.EnvVarArgs:
    """The alert webhook's URL from the Secret. Optional: without it the job still runs and reports, it
    just cannot post to a webhook."""
    webhook_url = k8s.core.v1.EnvVarSourceArgs(
        secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=ALERTS_SECRET, key="webhook-url", optional=True)
    )
    return k8s.core.v1.EnvVarArgs(name=DriftVariables.WEBHOOK_URL, value_from=webhook_url)


def pushgateway_variable() -> k8s.core.v1.EnvVarArgs:
    """Where the job pushes its results at the end of a run (monitoring/job_metrics.py)."""
    return k8s.core.v1.EnvVarArgs(name=DriftVariables.PUSHGATEWAY_URL, value=PUSHGATEWAY_URL)


def pushgateway_egress() -> k8s.networking.v1.NetworkPolicyEgressRuleArgs:
    """To the Pushgateway's pods in the monitoring namespace, on its port."""
    return k8s.networking.v1.NetworkPolicyEgressRuleArgs(
        to=[
            k8s.networking.v1.NetworkPolicyPeerArgs(
                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": MONITORING_NAMESPACE}
                ),
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={NAME_LABEL: PUSHGATEWAY_POD}),
            )
        ],
        ports=[k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=PUSHGATEWAY_PORT)],
    )


def declare_role(job: DailyJob, statements: list[dict], opts: pulumi.ResourceOptions) -> None:
    """The job's service account and its IRSA role, allowed exactly `statements`."""
    service_account_with_role(
        job.name,
        WorkloadRoleArgs(
            cluster=job.shared.identity,
            namespace=job.shared.namespace,
            service_account=job.app,
            policy_statements=statements,
        ),
        job.labels,
        opts,
    )


def declare_cron_job(
    job: DailyJob, pod: WorkloadPod, opts: pulumi.ResourceOptions, tracking: bool = True, pushes_results: bool = True
) -> k8s.batch.v1.CronJob:
    """The job's CronJob; `tracking`: its pod holds the tracking client's credentials (a policy skip says
    why); `pushes_results`: its pod carries the label the Pushgateway admits."""
    pod_labels = {**job.labels, **(DAILY_JOB_POD_LABEL if pushes_results else {})}
    skips = {**IRSA_TOKEN_SKIP, **(TRACKING_CREDENTIALS_SKIP if tracking else {})}
    return k8s.batch.v1.CronJob(
        f"{job.name}-cronjob",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=job.app, namespace=job.shared.namespace, labels=job.labels, annotations=skips
        ),
        spec=k8s.batch.v1.CronJobSpecArgs(
            schedule=job.schedule,
            time_zone="Etc/UTC",
            # A slow day must not overlap the next one, and a missed start is not run hours late.
            concurrency_policy="Forbid",
            starting_deadline_seconds=3600,
            successful_jobs_history_limit=3,
            failed_jobs_history_limit=3,
            job_template=k8s.batch.v1.JobTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=job.labels),
                spec=job_spec(pod_labels, pod, DAILY_JOB_LIMITS),
            ),
        ),
        opts=opts,
    )


def declare_job(
    job: DailyJob,
    statements: list[dict],
    pod: WorkloadPod,
    opts: pulumi.ResourceOptions,
    further_egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs] = (),
    tracking: bool = True,
    pushes_results: bool = True,
) -> None:
    """The whole job: its role allowed exactly `statements`, the CronJob of `pod`, and its NetworkPolicy
    (with `further_egress`); `tracking` and `pushes_results` as for the CronJob, the Pushgateway's egress
    going with the latter."""
    declare_role(job, statements, opts)
    declare_cron_job(job, pod, opts, tracking, pushes_results)
    declare_network_policy(job, opts, further_egress, tracking, pushgateway=pushes_results)


def declare_network_policy(
    job: DailyJob,
    opts: pulumi.ResourceOptions,
    further_egress: Sequence[k8s.networking.v1.NetworkPolicyEgressRuleArgs] = (),
    tracking: bool = True,
    pushgateway: bool = True,
) -> k8s.networking.v1.NetworkPolicy:
    """Nothing in; out: DNS, the tracking server (unless `tracking` is False), HTTPS (S3, STS, the
    webhook), the Pushgateway (unless `pushgateway` is False), and `further_egress`."""
    to_tracking = [tracking_egress(job.shared.tracking.namespace)] if tracking else []
    to_pushgateway = [pushgateway_egress()] if pushgateway else []
    egress = [dns_egress(), *to_tracking, https_egress(), *to_pushgateway, *further_egress]
    return k8s.networking.v1.NetworkPolicy(
        f"{job.name}-network-policy",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=job.app, namespace=job.shared.namespace, labels=job.labels),
        spec=egress_only(job.labels, egress),
        opts=opts,
    )
