"""Everything one model needs on the platform, from one catalogue entry and the stack's settings.

Adding a model to the platform is one catalogue entry (plus enabling it in a stack): this component
turns it into its training schedule, its serving Deployment, its drift job and its quality job, each
with an IRSA role scoped to the model's own prefix of the predictions, labels and reports buckets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.config import ModelSettings
from infra.drift_monitor import DriftMonitor, DriftMonitorArgs
from infra.labelling_queue import LabellingQueue, LabellingQueueArgs
from infra.model_monitoring import ModelMonitoring, ModelMonitoringArgs
from infra.model_service import ModelService, ModelServiceArgs, ServingResources, effective_batching
from infra.quality_monitor import QualityMonitor, QualityMonitorArgs
from infra.retrain_access import retrain_data_settings
from infra.shared_services import SharedServices
from infra.training_schedule import TrainingSchedule, TrainingScheduleArgs
from monitoring.settings import DriftVariables
from pipelines.contract import render_with_image
from workloads.catalogue_entry import CatalogueEntry


@dataclass(frozen=True)
class ModelArgs:
    entry: CatalogueEntry
    """The model's catalogue entry: its defaults (schedules, serving size, retraining on drift)."""
    settings: ModelSettings
    """What the stack says for this model: overrides of the entry's defaults."""
    shared: SharedServices
    compiled_pipeline: str
    """The compiled training pipeline (`pipelines/compiled/<model>.yaml`), before the training image is
    substituted into it."""


def pipeline_parameters(settings: ModelSettings, shared: SharedServices) -> dict[str, Any]:
    """Parameters of the scheduled runs, which the drift job's retrain runs get too: the cluster's
    datasets store (a step pod has no other) and the stack's promotion setting."""
    return {"dataset_store": shared.datasets.store, "auto_promote": settings.auto_promote}


def drift_settings(
    entry: CatalogueEntry, shared: SharedServices, parameters: dict[str, Any]
) -> dict[str, pulumi.Input[str]]:
    """The drift job's retrain switch: off, or a run of the model's pipeline submitted to the KFP API."""
    if not entry.retrain_on_drift:
        return {DriftVariables.RETRAIN: "off"}
    return {
        DriftVariables.RETRAIN: "kfp",
        DriftVariables.KFP_HOST: shared.pipelines.api_url,
        DriftVariables.TRAINING_IMAGE: shared.images.training_for(entry.gpu),
        DriftVariables.RETRAIN_ARGUMENTS: pulumi.Output.json_dumps(parameters),
        # The retrain snapshots base + the labelled production images first (infra/retrain_access.py).
        **retrain_data_settings(shared),
    }


class Model(pulumi.ComponentResource):
    """A model's TrainingSchedule, ModelService, DriftMonitor, QualityMonitor, LabellingQueue and ModelMonitoring."""

    registered_model_name: str
    service_url: pulumi.Output[str]
    quality_schedule: str
    """When its quality job runs (five-field cron, UTC): an hour after its drift job."""

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:platform:Model", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The catalogue name is the registered-model name: the pipeline registers it, serving loads it.
        self.registered_model_name = args.entry.name
        parameters = pipeline_parameters(args.settings, args.shared)
        self._create_training_schedule(name, args, parameters)
        self.service_url = self._create_service(name, args).url
        drift = self._drift_args(args, parameters)
        DriftMonitor(f"{name}-drift", drift, opts=child)
        # An hour after the drift job; a measured accuracy drop retrains like drift does.
        self.quality_schedule = QualityMonitor(f"{name}-quality", QualityMonitorArgs(drift=drift), opts=child).schedule
        # The day's images worth labelling, after the drift job (drifted days first), beside the quality job.
        queue = LabellingQueueArgs(entry=args.entry, shared=args.shared, schedule=self.quality_schedule)
        LabellingQueue(f"{name}-labelling-queue", queue, opts=child)
        # Its scrape target and service-level rules (infra/model_monitoring.py).
        ModelMonitoring(
            f"{name}-monitoring",
            ModelMonitoringArgs(entry=args.entry, shared=args.shared, on_gpu=args.settings.gpu_pool is not None),
            opts=child,
        )
        self.register_outputs(
            {
                "registeredModel": self.registered_model_name,
                "serviceUrl": self.service_url,
                "qualitySchedule": self.quality_schedule,
            }
        )

    def _create_training_schedule(self, name: str, args: ModelArgs, parameters: dict[str, Any]) -> TrainingSchedule:
        entry, shared = args.entry, args.shared
        # The pipeline's steps run in the CUDA variant when the model trains on the GPU pool.
        pipeline_yaml = pulumi.Output.from_input(shared.images.training_for(entry.gpu)).apply(
            lambda ref: render_with_image(args.compiled_pipeline, ref)
        )
        return TrainingSchedule(
            f"{name}-training",
            TrainingScheduleArgs(
                model=entry.name,
                pipeline_yaml=pipeline_yaml,
                cron=args.settings.training_schedule or entry.training_schedule,
                image=shared.images.training,
                pipelines=shared.pipelines,
                parameters=parameters,
                waits_for=(shared.datasets,),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_service(self, name: str, args: ModelArgs) -> ModelService:
        entry, settings = args.entry, args.settings
        return ModelService(
            f"{name}-serving",
            ModelServiceArgs(
                entry=entry,
                shared=args.shared,
                resources=ServingResources(
                    cpu=entry.serving_cpu, memory=entry.serving_memory, gpu_pool=settings.gpu_pool
                ),
                scale=settings.serving_scale(entry),
                batching=effective_batching(entry, settings),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    @staticmethod
    def _drift_args(args: ModelArgs, parameters: dict[str, Any]) -> DriftMonitorArgs:
        entry = args.entry
        return DriftMonitorArgs(
            entry=entry,
            shared=args.shared,
            schedule=args.settings.drift_schedule or entry.drift_schedule,
            settings=drift_settings(entry, args.shared, parameters),
            may_retrain=entry.retrain_on_drift,
        )
