"""A model's training pipeline, uploaded to Kubeflow Pipelines and run on its cron schedule.

`pulumi up` ships the compiled pipeline in a ConfigMap and runs `pipelines.schedule` in a Job named
after the pipeline's content hash: a changed pipeline gets a new Job (a new KFP pipeline version and
the recurring run moved onto it), an unchanged one leaves everything as it is. No manual step.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.hardened_workload import Compute, JobLimits, WorkloadContainer, WorkloadPod, job_spec
from infra.kubeflow_pipelines import KubeflowPipelines
from infra.network_rules import dns_egress, egress_only, pipelines_api_egress
from pipelines.contract import content_hash

PIPELINE_DIR = "/pipeline"


@dataclass(frozen=True)
class TrainingScheduleArgs:
    model: str
    pipeline_yaml: pulumi.Input[str]
    """The compiled pipeline with the training image substituted (`pipelines.contract.render_with_image`)."""
    cron: str
    """Five-field cron, UTC."""
    image: pulumi.Input[str]
    """Image with the `pipelines` package (the training image)."""
    pipelines: KubeflowPipelines
    """The install whose API the sync Job calls, from its namespace. The Job waits for all of it: on a
    first `pulumi up` the API does not exist before, and the Job would use up its retries."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Run parameters of the recurring run (values may be Outputs, e.g. a bucket name)."""
    waits_for: Sequence[pulumi.Resource] = ()
    """What else must be up before the sync Job runs: the dataset seed (the run the Job may start at
    once fetches from it)."""


def pipeline_version(pipeline_yaml: str, parameters: dict[str, Any], cron: str) -> str:
    """Name of the KFP version: changes exactly when the pipeline, its image, parameters or schedule do."""
    return content_hash(pipeline_yaml + json.dumps({"parameters": parameters, "cron": cron}, sort_keys=True))


class TrainingSchedule(pulumi.ComponentResource):
    """ConfigMap with the compiled pipeline and the idempotent Job that (re)schedules it."""

    version: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingScheduleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:pipelines:TrainingSchedule", name, None, opts)
        parameters = pulumi.Output.from_input(args.parameters).apply(lambda values: json.dumps(values, sort_keys=True))
        self.version = pulumi.Output.all(pulumi.Output.from_input(args.pipeline_yaml), parameters).apply(
            lambda values: pipeline_version(str(values[0]), json.loads(str(values[1])), args.cron)
        )
        labels = {"app.kubernetes.io/name": "training-schedule", "mlops.platform/model": args.model}
        namespace = args.pipelines.namespace

        pipeline = k8s.core.v1.ConfigMap(
            f"{name}-pipeline",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pulumi.Output.concat("pipeline-", args.model, "-", self.version),
                namespace=namespace,
                labels=labels,
            ),
            data={"pipeline.yaml": args.pipeline_yaml},
            immutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The sync pod talks to the KFP API in its own namespace and to nothing else.
        network_policy = k8s.networking.v1.NetworkPolicy(
            f"{name}-network-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"training-schedule-{args.model}", namespace=namespace, labels=labels
            ),
            spec=egress_only(labels, [dns_egress(), pipelines_api_egress(namespace)]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self._create_sync_job(
            name,
            args,
            labels,
            pipeline,
            parameters,
            pulumi.ResourceOptions(parent=self, depends_on=[pipeline, network_policy, args.pipelines, *args.waits_for]),
        )
        self.register_outputs({"version": self.version})

    def _create_sync_job(
        self,
        name: str,
        args: TrainingScheduleArgs,
        labels: dict[str, str],
        pipeline: k8s.core.v1.ConfigMap,
        parameters: pulumi.Output[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.Job:
        """Uploads the pipeline as the version named by its content hash and moves the recurring run onto it."""
        sync = WorkloadContainer(
            name="sync",
            image=args.image,
            command=["python", "-m", "pipelines.schedule"],
            args=[
                *("--host", args.pipelines.api_url, "--model", args.model),
                *("--package", f"{PIPELINE_DIR}/pipeline.yaml", "--version", self.version),
                *("--cron", args.cron, "--parameters", parameters),
            ],
            mounts=[k8s.core.v1.VolumeMountArgs(name="pipeline", mount_path=PIPELINE_DIR, read_only=True)],
            compute=Compute(cpu="50m", memory="128Mi", cpu_limit="500m", memory_limit="512Mi"),
        )
        pipeline_volume = k8s.core.v1.VolumeArgs(
            name="pipeline",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=pipeline.metadata.apply(lambda m: m.name or "")),
        )
        # Calls no AWS API and no Kubernetes API: no service account, no token.
        pod = WorkloadPod(container=sync, tmp_size="64Mi", volumes=[pipeline_volume])
        return k8s.batch.v1.Job(
            f"{name}-sync",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pulumi.Output.concat("schedule-", args.model, "-", self.version),
                namespace=args.pipelines.namespace,
                labels=labels,
            ),
            spec=job_spec(labels, pod, JobLimits(retries=4, deadline_seconds=600)),
            opts=opts,
        )
