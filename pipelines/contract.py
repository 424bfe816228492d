"""What the Pulumi program and the training pipelines agree on: no kfp, no torch, standard library only.

Both sides import these names, so neither can change one alone: where the compiled pipelines are
and how they are named, the placeholder their steps run until the image is known, the training
image's Dockerfile and exact build context, the tracking Secret the steps read, and the GPU
resource and node label the training step asks for.

    from pipelines.contract import compiled_pipeline_path, render_with_image
    text = compiled_pipeline_path("digits").read_text()           # committed, kept fresh by a test
    spec = image.ref.apply(lambda ref: render_with_image(text, ref))  # the image built from TRAINING_DOCKERFILE

Compiled pipelines are committed under `pipelines/compiled/<model>.yaml` (regenerate with
`mlops pipeline compile`; `tests/pipelines` fails when a committed file is stale). Every step's
image in them is `TRAINING_IMAGE_PLACEHOLDER`, which can never be pulled: whoever uploads the
pipeline substitutes the training image reference (by digest) with `render_with_image`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
COMPILED_DIRECTORY = Path(__file__).resolve().parent / "compiled"
TRAINING_IMAGE_PLACEHOLDER = "mlops.invalid/training-image:substitute-me"
TRAINING_DOCKERFILE = "pipelines/Dockerfile"
"""Relative to the repository root, which is the build context."""
TRAINING_IMAGE_SOURCES = (
    "pyproject.toml",
    "pipelines/__init__.py",
    "pipelines/components.py",
    "pipelines/contract.py",
    "pipelines/dataset_seed.py",
    "pipelines/kfp_types.py",
    "pipelines/schedule.py",
    "pipelines/steps.py",
    "workloads/__init__.py",
    "workloads/catalogue_entry.py",
    "workloads/datasets",
    "workloads/features.py",
    "workloads/models",
    "workloads/reference.py",
    "workloads/training.py",
    "workloads/training_batches.py",
    "workloads/tracking/__init__.py",
    "workloads/tracking/instrument.py",
    "workloads/tracking/registry.py",
)
"""The training image's build context, exactly (infra/container_image.py): its dependencies and the
modules the steps, the schedule and the dataset-seed Jobs import. No catalogue (each compiled
pipeline carries its model's entry) and no compiled pipelines, so a new model rebuilds nothing."""
TRACKING_SECRET_NAME = "mlops-tracking-client"
"""Secret, in the namespace the pipeline's pods run in, that the train/evaluate/register steps read."""
TRACKING_SECRET_KEYS = {
    "tracking_uri": "MLFLOW_TRACKING_URI",
    "username": "MLFLOW_TRACKING_USERNAME",
    "password": "MLFLOW_TRACKING_PASSWORD",
}
"""Secret key → environment variable."""
GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
"""Every GPU pool's nodes carry this label (infra/node_pool.py), whatever the instance type."""


def pipeline_name(model: str) -> str:
    """The KFP pipeline name of a catalogue model's training pipeline."""
    return f"training-{model}"


def compiled_pipeline_path(model: str, directory: Path | None = None) -> Path:
    """Where the compiled pipeline YAML of `model` lives (`pipelines/compiled/<model>.yaml`)."""
    return (directory or COMPILED_DIRECTORY) / f"{model}.yaml"


def render_with_image(pipeline_yaml: str, image: str) -> str:
    """The compiled pipeline with every step running `image` instead of the placeholder."""
    if TRAINING_IMAGE_PLACEHOLDER not in pipeline_yaml:
        raise ValueError("the pipeline text does not contain the training-image placeholder: already rendered?")
    return pipeline_yaml.replace(TRAINING_IMAGE_PLACEHOLDER, image)


def content_hash(pipeline_yaml: str) -> str:
    """Short sha256 of a pipeline's text: a new pipeline version is uploaded when it changes."""
    return hashlib.sha256(pipeline_yaml.encode()).hexdigest()[:16]
