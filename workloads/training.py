"""Training and evaluation of catalogue models: plain functions, the same in the pipeline and in a script.

The pipeline's train and evaluate steps call `train_model` and `evaluate_model`; so does the
benchmark's plain-script baseline, which is what makes the comparison fair. Inputs are already
preprocessed (`workloads.features.preprocess`), float32 (N, 1, H, W).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from workloads.catalogue_entry import CatalogueEntry, TrainingParameters
from workloads.training_batches import batch_source

THREADS_ENVIRONMENT_VARIABLE = "MLOPS_TORCH_THREADS"
"""torch's intra-op threads for training and evaluation; default 1 (see `configure_threads`)."""
EVALUATION_BATCH = 512


def configure_threads() -> None:
    """Set torch's intra-op threads from MLOPS_TORCH_THREADS, default 1.

    The catalogue's models are small: splitting a 32-image batch of 8x8 convolutions across cores
    costs more in synchronisation than it gains, and on a busy machine it collapses (measured on 2
    shared cores: digits at default epochs trained in 9.6 s with 1 thread, 48 s with 2). One thread
    is also bit-for-bit reproducible. Larger models set the variable (the GPU path ignores it).
    """
    threads = os.environ.get(THREADS_ENVIRONMENT_VARIABLE, "1")
    try:
        count = int(threads)
    except ValueError:
        raise ValueError(f"{THREADS_ENVIRONMENT_VARIABLE} must be a positive integer, got {threads!r}") from None
    torch.set_num_threads(max(1, count))


def pick_device(requested: str | None = None) -> torch.device:
    """`cuda` when a GPU is visible (the GPU pool), else `cpu`; `requested` forces one."""
    if requested:
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class TrainingResult:
    """A trained model (on the CPU, in eval mode) and how the training went."""

    model: nn.Module
    history: list[dict[str, float]]
    """Per epoch: `loss` (mean training loss) and `train_accuracy`."""
    device: str
    seconds: float
    images_per_second: float


def train_model(
    entry: CatalogueEntry,
    inputs: np.ndarray,
    labels: np.ndarray,
    parameters: TrainingParameters,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    device: str | None = None,
    mixed_precision: bool | None = None,
) -> TrainingResult:
    """Train a fresh `entry.build_model()` with Adam and cross-entropy; deterministic for a seed on CPU.

    On a GPU, `mixed_precision` (default: on there) runs the forward pass under float16 autocast with
    a GradScaler (float16, not bfloat16: the T4 of the staging pool has no bfloat16 tensor cores; the
    scaler keeps small gradients from underflowing). On the CPU nothing changes: float32, as before.
    """
    if inputs.shape[0] != labels.shape[0] or inputs.shape[0] == 0:
        raise ValueError(f"{inputs.shape[0]} inputs for {labels.shape[0]} labels: nothing to train on")
    configure_threads()
    torch.manual_seed(parameters.seed)
    target = pick_device(device)
    amp = target.type == "cuda" and (mixed_precision is None or mixed_precision)
    model = entry.build_model().to(target)
    optimiser = torch.optim.Adam(model.parameters(), lr=parameters.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    loss_function = nn.CrossEntropyLoss()
    batches = batch_source(inputs, labels, target, parameters.batch_size)
    order_generator = torch.Generator().manual_seed(parameters.seed)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    model.train()
    for epoch in range(parameters.epochs):
        # Summed on the device (float64: the same sums as Python floats): reading a loss back per step
        # would make every step wait for the GPU.
        total_loss = torch.zeros((), dtype=torch.float64, device=target)
        correct = torch.zeros((), dtype=torch.int64, device=target)
        for features, targets in batches.epoch(parameters.batch_size, order_generator):
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(device_type=target.type, dtype=torch.float16, enabled=amp):
                logits = model(features)
                loss = loss_function(logits, targets)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            total_loss += loss.detach().double() * features.shape[0]
            correct += (logits.detach().argmax(dim=1) == targets).sum()
        record = {"loss": float(total_loss) / inputs.shape[0], "train_accuracy": int(correct) / inputs.shape[0]}
        history.append(record)
        if on_epoch is not None:
            on_epoch(epoch, record)
    if target.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    model = model.cpu().float().eval()
    return TrainingResult(
        model=model,
        history=history,
        device=target.type,
        seconds=seconds,
        images_per_second=inputs.shape[0] * parameters.epochs / max(seconds, 1e-9),
    )


def predict_probabilities(model: nn.Module, inputs: np.ndarray) -> np.ndarray:
    """Softmax probabilities (N, classes) in evaluation mode, batched."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], EVALUATION_BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + EVALUATION_BATCH], dtype=np.float32))
            outputs.append(torch.softmax(model(batch), dim=1).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


@dataclass(frozen=True)
class Evaluation:
    """Validation metrics of one model on a held-out split."""

    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    """class name → precision, recall, f1, support."""
    confusion_matrix: list[list[int]]
    """rows = true class, columns = predicted class, in class_names order."""
    class_names: tuple[str, ...]
    samples: int
    predictions: np.ndarray = field(repr=False)
    confidences: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    """(samples, classes) float64 softmax, column i = class_names[i]: what the drift reference keeps."""

    def metric(self, name: str) -> float:
        """The headline metric the catalogue names (`accuracy` or `macro_f1`)."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1}[name]

    def headline_metrics(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1}

    def all_metrics(self) -> dict[str, float]:
        """Headline metrics plus `precision.<class>`, `recall.<class>`, `f1.<class>`."""
        metrics = self.headline_metrics()
        for name, values in self.per_class.items():
            for key in ("precision", "recall", "f1"):
                metrics[f"{key}.{name}"] = values[key]
        return metrics

    def report(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "samples": self.samples,
            "class_names": list(self.class_names),
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix,
        }


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]
) -> tuple[float, float, dict[str, dict[str, float]], np.ndarray]:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    classes = len(class_names)
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positive, predicted, out=np.zeros(classes), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros(classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0)
    per_class = {
        name: {
            "precision": float(precision[index]),
            "recall": float(recall[index]),
            "f1": float(f1[index]),
            "support": float(actual[index]),
        }
        for index, name in enumerate(class_names)
    }
    present = actual > 0
    accuracy = float(true_positive.sum() / max(labels.shape[0], 1))
    macro_f1 = float(f1[present].mean()) if present.any() else 0.0
    return accuracy, macro_f1, per_class, confusion


def evaluate_model(model: nn.Module, inputs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> Evaluation:
    """Evaluate on a held-out split."""
    if inputs.shape[0] == 0:
        raise ValueError("the validation split is empty: nothing to evaluate")
    probabilities = predict_probabilities(model, inputs).astype(np.float64)
    predictions = probabilities.argmax(axis=1)
    accuracy, macro_f1, per_class, confusion = classification_metrics(labels, predictions, class_names)
    return Evaluation(
        accuracy=accuracy,
        macro_f1=macro_f1,
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        class_names=tuple(class_names),
        samples=int(labels.shape[0]),
        predictions=predictions,
        confidences=probabilities.max(axis=1),
        probabilities=probabilities,
    )
