"""The model catalogue: one typed, frozen entry per model the platform trains, serves and watches.

Adding a model is adding one entry here (`mlops model new` does it). Everything downstream reads the
entry: the training pipeline (dataset, hyper-parameters, quality gate, GPU request), the serving
service, the drift job and the per-model infrastructure. The module needs only the standard library,
so the Pulumi program can read the catalogue without importing torch: the model is referenced by
its import path (`model_factory`) and only resolved by `build_model()` where torch is installed.

What an entry is lives in `workloads.catalogue_entry`; this module holds only the entries, and no
image contains it: a pod is handed its own entry by the infrastructure (`MLOPS_CATALOGUE_ENTRY`), so
a new entry changes no image and no other model's resources (see that module).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from workloads.catalogue_entry import (
    QUALITY_METRICS,
    CatalogueEntry,
    CatalogueError,
    TrainingParameters,
    UnknownModelError,
)

__all__ = [
    "CATALOGUE",
    "QUALITY_METRICS",
    "CatalogueEntry",
    "CatalogueError",
    "TrainingParameters",
    "UnknownModelError",
    "get",
    "names",
]


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
