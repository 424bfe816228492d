"""The model catalogue: one typed, frozen entry per model the platform trains, serves and watches.

Adding a model is adding one entry here. Everything downstream reads the entry: the training
pipeline (dataset, hyper-parameters, quality gate, GPU request), and later the serving service,
the drift job and the per-model infrastructure. The module needs only the standard library, so
the Pulumi program can read the catalogue without importing torch: the model is referenced by
its import path (`model_factory`) and only resolved by `build_model()` where torch is installed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
        }


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
    """Automatic promotion needs the candidate to beat production's metric by more than this."""
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
        for schedule in (self.training_schedule, self.drift_schedule):
            if len(schedule.split()) != 5:
                raise CatalogueError(f"{self.name}: schedule {schedule!r} must be a five-field cron expression")
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


_ENTRIES = (
    CatalogueEntry(
        name="digits",
        task="image-classification",
        dataset="digits",
        model_factory="workloads.models.digits:DigitClassifier",
        image_shape=(8, 8),
        class_names=tuple(str(digit) for digit in range(10)),
        training=TrainingParameters(epochs=12, batch_size=32, learning_rate=2e-3, seed=0),
        quality_metric="accuracy",
        quality_threshold=0.95,
        promotion_margin=0.002,
        gpu=False,
        retrain_on_drift=True,
        description="Handwritten digits 0-9 from 8x8 grayscale scans (scikit-learn's digits).",
    ),
    CatalogueEntry(
        name="surface-defects",
        task="image-classification",
        dataset="surface-defects",
        model_factory="workloads.models.surface_defects:SurfaceDefectClassifier",
        image_shape=(32, 32),
        class_names=("clean", "scratch", "stain"),
        training=TrainingParameters(epochs=6, batch_size=32, learning_rate=3e-3, seed=0),
        quality_metric="macro_f1",
        quality_threshold=0.9,
        promotion_margin=0.005,
        gpu=True,
        serving_memory="2Gi",
        training_schedule="0 2 * * 1",
        description="Surface inspection on 32x32 texture patches: clean, scratched or stained.",
    ),
)

CATALOGUE: Mapping[str, CatalogueEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})
if len(CATALOGUE) != len(_ENTRIES):
    raise CatalogueError("duplicate model names in the catalogue")


def names() -> tuple[str, ...]:
    """Catalogue model names, in catalogue order."""
    return tuple(CATALOGUE)


def get(name: str) -> CatalogueEntry:
    """The entry called `name`; `UnknownModelError` naming the known models otherwise."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}: the catalogue has {', '.join(CATALOGUE)}") from None
