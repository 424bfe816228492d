"""What a catalogue entry is, and how a workload learns the entry of its model without the catalogue.

The entries themselves live in `workloads.catalogue`, which `mlops model new` edits. That module is
deliberately kept out of every image (see `ImageSpec.sources` in infra/platform.py): if it were in
one, adding a model would change that image's content tag, rebuild it and roll every model's pods
onto it. Instead the infrastructure, which reads the catalogue as metadata, hands each pod the one
entry it runs in `MLOPS_CATALOGUE_ENTRY` (JSON, `entry_to_json`): the serving Deployment and the
drift CronJob set it, and every compiled training pipeline carries it on the steps that take a
model (`pipelines.training_pipeline`). `entry_for(name)` reads it, and falls back to the
catalogue module where one is importable: a checkout (the local loop, the CLI, the tests).

An environment variable rather than a mounted ConfigMap: the entry is a few hundred bytes, a pod
reads it once at start, and a change of the entry then changes the pod's spec, so Kubernetes rolls
that model's pods, and only that model's; a ConfigMap would change under running pods unseen.

Only the model's definition travels (`WORKLOAD_FIELDS`: what it is, its data, how it is trained and
judged). Its deployment fields (sizes, scale, batching, schedules, retrain switch, service level,
description, tags) are applied by the infrastructure and read by no workload; an entry decoded here has
their defaults.
So editing a schedule, an SLO or a description does not recompile the pipeline nor restart the
model's pods.
Standard library only: the Pulumi program imports it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any

QUALITY_METRICS = ("accuracy", "macro_f1")
"""Metrics the evaluate step computes and a quality gate can use."""
_NAME_PATTERN = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")


class CatalogueError(ValueError):
    """An entry is invalid (raised at import time, so a bad entry never reaches a pipeline)."""


class UnknownModelError(LookupError):
    """No catalogue entry has this name."""

    def __str__(self) -> str:  # LookupError's default would repr() the message
        return str(self.args[0]) if self.args else "unknown model"


@dataclass(frozen=True)
class TrainingParameters:
    """Defaults of the training pipeline's hyper-parameters (each run may override them)."""

    epochs: int
    """Passes over the training split."""
    batch_size: int
    """Images per optimiser step."""
    learning_rate: float
    """Adam learning rate."""
    seed: int = 0
    """Seeds the split, the weight initialisation and the batch order: same seed, same model."""
    validation_fraction: float = 0.2
    """Share of the dataset held out (stratified) for evaluation and the quality gate."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise CatalogueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not 0 < self.learning_rate < 1:
            raise CatalogueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if not 0 < self.validation_fraction < 0.5:
            raise CatalogueError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServiceLevel:
    """The model service's objectives, from which `observability` derives its alerting rules.

    Deployment metadata like the schedules: no workload reads it, so it is not in `WORKLOAD_FIELDS`.
    """

    availability: float = 0.99
    """Share of the model's requests over 30 days not answered with a 5xx (Flagger's default success
    rate is >= 99 %). At most 0.9999; at least 0.95, because the fast-burn page fires at 14.4 times the
    error budget, which below ~0.931 would take more than 100 % errors."""
    latency_p99_ms: int | None = None
    """99 % of successful requests answer within this; None: the model's adaptive-batching latency
    budget (`workloads.serving.settings.default_batch_limits`), the point where the service sheds
    requests instead of answering slowly. Must be a bucket of BentoML's duration histogram."""
    traffic_expected: bool = True
    """Alert when the service answers no request for `no_traffic_hours` (off for batch-only models)."""
    no_traffic_hours: int = 6
    """How long without a single request counts as an outage upstream (a client, a gateway)."""
    drift_max_age_hours: int = 26
    """The drift job must have succeeded within this: its daily schedule plus two hours to run."""

    def __post_init__(self) -> None:
        # Every out-of-range setting in one message: an entry is fixed in one edit, not one per run.
        latency = self.latency_p99_ms
        checks = (
            ("availability", self.availability, "[0.95, 0.9999]", 0.95 <= self.availability <= 0.9999),
            ("latency_p99_ms", latency, "None or [1, 600000]", latency is None or 1 <= latency <= 600_000),
            ("no_traffic_hours", self.no_traffic_hours, "[1, 168]", 1 <= self.no_traffic_hours <= 168),
            ("drift_max_age_hours", self.drift_max_age_hours, "[1, 720]", 1 <= self.drift_max_age_hours <= 720),
        )
        problems = [f"{name} must be in {allowed}, got {value}" for name, value, allowed, valid in checks if not valid]
        if problems:
            raise CatalogueError("service level: " + "; ".join(problems))


@dataclass(frozen=True)
class ServingScale:
    """How many replicas serve the model, and when the autoscaler adds one; a stack may override each.

    Deployment metadata like the service level: no workload reads it. On a GPU pool the autoscaler
    holds the requests being answered per replica at `in_flight_per_replica` (KEDA's Prometheus
    scaler, infra/serving_autoscaler.py); on CPU it holds CPU at 70 % of the request, which tracks
    the load of a CPU-bound service, and the in-flight target does not apply.
    """

    min_replicas: int = 1
    """Replicas kept running when idle (at least one: a cold GPU replica takes minutes to be ready)."""
    max_replicas: int = 2
    """The ceiling, which also caps what a traffic spike can cost (one GPU per replica)."""
    in_flight_per_replica: int | None = None
    """Requests in flight per replica the autoscaler aims at; None: one full adaptive batch (the
    service's `max_batch_size`), the most a replica can work on at once."""

    def __post_init__(self) -> None:
        in_flight = self.in_flight_per_replica
        checks = (
            ("min_replicas", self.min_replicas, "[1, 100]", 1 <= self.min_replicas <= 100),
            ("max_replicas", self.max_replicas, "[1, 100]", 1 <= self.max_replicas <= 100),
            ("in_flight_per_replica", in_flight, "None or [1, 10000]", in_flight is None or 1 <= in_flight <= 10_000),
        )
        problems = [f"{name} must be in {allowed}, got {value}" for name, value, allowed, valid in checks if not valid]
        if not problems and self.min_replicas > self.max_replicas:
            problems.append(f"min_replicas ({self.min_replicas}) must be <= max_replicas ({self.max_replicas})")
        if problems:
            raise CatalogueError("serving scale: " + "; ".join(problems))


@dataclass(frozen=True)
class ServingBatching:
    """Adaptive batching of the model's service, where the defaults for its input size do not fit.

    Deployment metadata (the Deployment sets the service's MLOPS_MAX_BATCH_SIZE, MLOPS_MAX_LATENCY_MS
    and MLOPS_CONCURRENT_BATCHES from it, a stack may override each); None keeps the service's
    default (`workloads.serving.settings.default_batch_limits`, one batch at a time). Set from a
    measurement on the device the model is served on (`benchmarks/gpu_serving.py` prints one), not
    a guess: a GPU wants far larger batches than a CPU.
    """

    max_batch_size: int | None = None
    """Most images in one forward pass."""
    max_latency_ms: int | None = None
    """Where the dispatcher starts shedding queued requests (503); also the default p99 objective."""
    concurrent_batches: int | None = None
    """Batched forward passes in the model at once."""

    def __post_init__(self) -> None:
        checks = (
            ("max_batch_size", self.max_batch_size, 4096),
            ("max_latency_ms", self.max_latency_ms, 600_000),
            ("concurrent_batches", self.concurrent_batches, 64),
        )
        problems = [
            f"{name} must be None or in [1, {ceiling}], got {value}"
            for name, value, ceiling in checks
            if value is not None and not 1 <= value <= ceiling
        ]
        if problems:
            raise CatalogueError("serving batching: " + "; ".join(problems))


@dataclass(frozen=True)
class CatalogueEntry:
    """Everything the platform needs to know about one model."""

    name: str
    """Catalogue name = registered-model name = pipeline suffix; a DNS label (it names Kubernetes objects)."""
    task: str
    """What the model does, e.g. `image-classification`."""
    dataset: str
    """Name of the dataset in `workloads.datasets` (and prefix in the datasets store)."""
    model_factory: str
    """`module:callable` returning a fresh, untrained `torch.nn.Module`."""
    image_shape: tuple[int, int]
    """(height, width) of the images the model takes (grayscale)."""
    class_names: tuple[str, ...]
    """Output classes, in logit order."""
    training: TrainingParameters
    """Default hyper-parameters of the training pipeline."""
    quality_metric: str
    """Metric of the quality gate and of promotion decisions (one of QUALITY_METRICS)."""
    quality_threshold: float
    """A candidate is registered only when its validation `quality_metric` is >= this."""
    promotion_margin: float
    """Automatic promotion needs the candidate to beat production's metric by more than this (on the
    held-out production slice when the dataset version has one, else on the validation split)."""
    regression_margin: float = 0.01
    """The gate refuses a candidate whose `quality_metric` on the original validation split is below
    production's by more than this: learning a new distribution must not cost the old one."""
    gpu: bool = False
    """Train on the GPU pool (requests one `nvidia.com/gpu` and tolerates the GPU taint)."""
    serving_cpu: str = "500m"
    """CPU request (and limit) of one serving pod."""
    serving_memory: str = "1536Mi"
    """Memory request (and limit) of one serving pod (`bentoml serve` and its worker take ~690 MiB for digits)."""
    training_schedule: str = "0 3 * * 0"
    """When the cluster retrains it (five-field cron, UTC); a stack may override it."""
    drift_schedule: str = "30 4 * * *"
    """When its drift job runs (five-field cron, UTC); a stack may override it."""
    retrain_on_drift: bool = False
    """Submit the training pipeline when the drift job finds dataset drift (once per cooldown)."""
    labelling_budget: int = 200
    """Production images sent to the labelling queue per day, at most (`mlops labels queue`); what a
    reviewer labels in about an hour at a class choice per image. MLOPS_LABELLING_BUDGET overrides it."""
    service_level: ServiceLevel = field(default_factory=ServiceLevel)
    """Objectives of the model service and its drift job (`observability` alerts on them)."""
    serving_scale: ServingScale = field(default_factory=ServingScale)
    """Replica bounds and the in-flight target of its autoscaler (a stack may override each)."""
    serving_batching: ServingBatching = field(default_factory=ServingBatching)
    """Adaptive batching of its service where the input-size defaults do not fit (a stack may override)."""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Free-form labels (owner, team)."""

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.match(self.name):
            raise CatalogueError(
                f"model name {self.name!r} must be a DNS label: lowercase letters, digits and '-', "
                "starting with a letter, at most 40 characters"
            )
        if ":" not in self.model_factory:
            raise CatalogueError(f"{self.name}: model_factory must be 'module:callable', got {self.model_factory!r}")
        if self.quality_metric not in QUALITY_METRICS:
            raise CatalogueError(
                f"{self.name}: quality_metric must be one of {', '.join(QUALITY_METRICS)}, got {self.quality_metric!r}"
            )
        if not 0 < self.quality_threshold <= 1:
            raise CatalogueError(f"{self.name}: quality_threshold must be in (0, 1], got {self.quality_threshold}")
        if not 0 <= self.promotion_margin < 1:
            raise CatalogueError(f"{self.name}: promotion_margin must be in [0, 1), got {self.promotion_margin}")
        if not 0 <= self.regression_margin < 1:
            raise CatalogueError(f"{self.name}: regression_margin must be in [0, 1), got {self.regression_margin}")
        for schedule in (self.training_schedule, self.drift_schedule):
            if len(schedule.split()) != 5:
                raise CatalogueError(f"{self.name}: schedule {schedule!r} must be a five-field cron expression")
        if not 0 <= self.labelling_budget <= 100_000:
            raise CatalogueError(f"{self.name}: labelling_budget must be in [0, 100000], got {self.labelling_budget}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            raise CatalogueError(f"{self.name}: class_names must be at least 2 distinct names")
        object.__setattr__(self, "tags", MappingProxyType(dict(self.tags)))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def build_model(self) -> Any:
        """A fresh, untrained instance of the model (imports torch)."""
        module_name, _, attribute = self.model_factory.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        return factory(classes=self.num_classes)


ENTRY_VARIABLE = "MLOPS_CATALOGUE_ENTRY"
"""Environment variable holding the JSON of the entry a pod runs (set by the infrastructure)."""
WORKLOAD_FIELDS = (
    "name",
    "task",
    "dataset",
    "model_factory",
    "image_shape",
    "class_names",
    "training",
    "quality_metric",
    "quality_threshold",
    "promotion_margin",
    "gpu",
)
"""The fields workloads read (training, evaluation, registration, serving, drift, compiling)."""


def entry_to_json(entry: CatalogueEntry) -> str:
    """The entry's `WORKLOAD_FIELDS` as compact JSON with sorted keys: the same entry, the same text."""
    payload: dict[str, Any] = {}
    for name in WORKLOAD_FIELDS:
        value = getattr(entry, name)
        if isinstance(value, TrainingParameters):
            value = value.as_dict()
        elif isinstance(value, tuple):
            value = list(value)
        payload[name] = value
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def entry_from_json(text: str) -> CatalogueEntry:
    """The entry `entry_to_json` wrote (validated like any entry); CatalogueError when it is not one."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise CatalogueError(f"{ENTRY_VARIABLE} is not JSON: {error}") from None
    if not isinstance(payload, dict) or set(payload) != set(WORKLOAD_FIELDS):
        raise CatalogueError(f"{ENTRY_VARIABLE} must be a JSON object with exactly {', '.join(WORKLOAD_FIELDS)}")
    try:
        return CatalogueEntry(
            **{
                **payload,
                "image_shape": tuple(payload["image_shape"]),
                "class_names": tuple(payload["class_names"]),
                "training": TrainingParameters(**payload["training"]),
            }
        )
    except (TypeError, ValueError) as error:  # CatalogueError is a ValueError
        raise CatalogueError(f"{ENTRY_VARIABLE} is not a valid entry: {error}") from None


def entry_for(name: str, environ: Mapping[str, str] | None = None) -> CatalogueEntry:
    """The entry of model `name`: the one `MLOPS_CATALOGUE_ENTRY` carries when it names this model,
    else the catalogue's, where the catalogue module exists (a checkout; no image has it)."""
    environment = os.environ if environ is None else environ
    carried = environment.get(ENTRY_VARIABLE, "").strip()
    if carried:
        entry = entry_from_json(carried)
        if entry.name == name:
            return entry
    try:
        # Optional by design: absent from every image (module docstring). Not `from workloads import
        # catalogue`, which reports a missing module as a plain ImportError naming the package.
        import workloads.catalogue as catalogue
    except ModuleNotFoundError as error:
        if error.name != "workloads.catalogue":
            raise
        described = f"describes {entry_from_json(carried).name!r}" if carried else "is not set"
        raise UnknownModelError(
            f"unknown model {name!r}: this image has no catalogue and {ENTRY_VARIABLE} {described}"
        ) from None
    return catalogue.get(name)
