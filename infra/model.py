"""Everything one model needs on the platform, from one catalogue entry and the stack's settings.

Adding a model to the platform is one catalogue entry (plus enabling it in a stack): this component
turns it into its training schedule, its serving Deployment and its drift job, each with an IRSA
role scoped to the model's own prefix of the predictions and reports buckets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.drift_monitor import DriftMonitor, DriftMonitorArgs
from infra.model_service import ModelService, ModelServiceArgs, ServingResources
from infra.shared_services import SharedServices
from infra.training_schedule import TrainingSchedule, TrainingScheduleArgs


@dataclass(frozen=True)
class ModelPlan:
    """One model's settings in this stack: the catalogue entry's defaults with the stack's overrides."""

    name: str
    pipeline_parameters: dict[str, Any]
    """Parameters of the scheduled runs (the drift job's retrain runs get the same)."""
    training_image: pulumi.Input[str]
    """What the pipeline's steps run in: the CUDA variant when the model trains on the GPU pool."""
    training_schedule: str
    drift_schedule: str
    serving: ServingResources
    min_replicas: int
    max_replicas: int
    drift_settings: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    retrain_on_drift: bool = False


@dataclass(frozen=True)
class ModelArgs:
    plan: ModelPlan
    shared: SharedServices
    pipeline_yaml: pulumi.Input[str]
    """The compiled training pipeline with the training image substituted."""


class Model(pulumi.ComponentResource):
    """A model's TrainingSchedule, ModelService and DriftMonitor."""

    registered_model_name: str
    service_url: pulumi.Output[str]

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:platform:Model", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan, shared = args.plan, args.shared
        # The catalogue name is the registered-model name: the pipeline registers it, serving loads it.
        self.registered_model_name = plan.name

        TrainingSchedule(
            f"{name}-training",
            TrainingScheduleArgs(
                model=plan.name,
                pipeline_yaml=args.pipeline_yaml,
                cron=plan.training_schedule,
                image=shared.training_image,
                api_url=shared.pipelines_api_url,
                namespace=shared.pipelines_namespace,
                parameters=plan.pipeline_parameters,
                waits_for=shared.training_prerequisites,
            ),
            opts=child,
        )
        service = ModelService(
            f"{name}-serving",
            ModelServiceArgs(
                model=plan.name,
                shared=shared,
                resources=plan.serving,
                min_replicas=plan.min_replicas,
                max_replicas=plan.max_replicas,
            ),
            opts=child,
        )
        DriftMonitor(
            f"{name}-drift",
            DriftMonitorArgs(
                model=plan.name,
                shared=shared,
                schedule=plan.drift_schedule,
                settings=plan.drift_settings,
                may_retrain=plan.retrain_on_drift,
            ),
            opts=child,
        )
        self.service_url = service.url
        self.register_outputs({"registeredModel": self.registered_model_name, "serviceUrl": self.service_url})
