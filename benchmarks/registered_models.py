"""Models the serving tests and the benchmark put in a real registry: trained digits, plus any module.

Training and logging go through the platform's own code (`workloads.training`, `tracked_run`,
`log_model`, `register_version`), so what the service loads is what the pipeline registers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from workloads import catalogue, features
from workloads.catalogue import TrainingParameters
from workloads.datasets.builders import build
from workloads.tracking.instrument import tracked_run
from workloads.tracking.registry import register_version
from workloads.training import evaluate_model, train_model

HELD_OUT = 297
"""The last images of scikit-learn's digits are never trained on."""


@dataclass(frozen=True)
class DigitsData:
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def digits_data() -> DigitsData:
    data = build("digits")
    return DigitsData(
        train_images=data.images[:-HELD_OUT],
        train_labels=data.labels[:-HELD_OUT],
        test_images=data.images[-HELD_OUT:],
        test_labels=data.labels[-HELD_OUT:],
    )


def train_digits(data: DigitsData, epochs: int, seed: int) -> tuple[torch.nn.Module, float]:
    """A digits classifier after `epochs` epochs and its held-out accuracy."""
    entry = catalogue.get("digits")
    parameters = TrainingParameters(epochs=epochs, batch_size=32, learning_rate=2e-3, seed=seed)
    result = train_model(entry, features.preprocess(data.train_images), data.train_labels, parameters)
    inputs = features.preprocess(data.test_images)
    evaluation = evaluate_model(result.model, inputs, data.test_labels, entry.class_names)
    return result.model, evaluation.accuracy


def register_module(name: str, module: torch.nn.Module, example: torch.Tensor, metrics: dict[str, float]) -> str:
    """Log `module` in a tracked run and register it as a new version of `name`; returns the version."""
    with tracked_run(experiment=f"serving-{name}", params={"purpose": "serving"}) as run:
        info = run.log_model(module.eval(), input_example=example)
    return str(register_version(name, info.model_uri, run.run_id, metrics, quality_gate_passed=True).version)
