"""The work of each pipeline step, as plain functions over files.

The KFP components (`pipelines.components`) are thin wrappers that call these with their artifact
paths; the benchmark's plain-script baseline calls the same functions in one process. Imports are
local to each step so a step's container only pays for what it uses (fetch never imports torch).

Tracking: train, evaluate and register talk to the MLflow server named by MLFLOW_TRACKING_URI
(with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) — environment, never parameters, so no
credential appears in a pipeline spec or a run's parameters.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

LOG = logging.getLogger("mlops.pipeline")
EXPERIMENT_PREFIX = "training/"
SPLIT_INPUTS = "inputs"
SPLIT_IMAGES = "images"
SPLIT_LABELS = "labels"
TIMINGS_ENVIRONMENT_VARIABLE = "MLOPS_STEP_TIMINGS"
"""If set, each step appends {"step", "start", "end"} (epoch seconds) to this JSON-lines file
(benchmarks/pipeline.py uses it to split a run into the steps' own work and the overhead between)."""

Step = TypeVar("Step", bound=Callable[..., Any])


def timed(function: Step) -> Step:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return function(*args, **kwargs)
        finally:
            target = os.environ.get(TIMINGS_ENVIRONMENT_VARIABLE)
            if target:
                record = {"step": function.__name__, "start": started, "end": time.time()}
                with open(target, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")

    return wrapper  # type: ignore[return-value]


def prepare_process_exit() -> None:
    """Make the end of a process that ran one step cheap: call it last, in that process only.

    A step's process holds everything torch, MLflow and pandas created at import, and Python's
    shutdown runs full garbage collections over all of it again: 1-3 s per step process on two
    shared cores (the train step's most), paid five times by a pipeline and once by a script
    (benchmarks/pipeline.py). `gc.freeze()` moves every object alive now into the permanent
    generation, which collections skip. Objects are still freed by reference counting; only the
    reference cycles alive now are left for the operating system, which reclaims the process a
    moment later. Not for long-lived processes (tests, the CLI): they would keep those cycles.
    """
    import gc

    gc.freeze()


def _say(message: str) -> None:
    """One line on stdout: kfp.local streams it, KFP keeps it in the step's log."""
    print(f"[mlops] {message}", flush=True)


def experiment_name(model: str) -> str:
    return f"{EXPERIMENT_PREFIX}{model}"


# ---------------------------------------------------------------------------------------------- fetch


@dataclass(frozen=True)
class FetchResult:
    version: str
    digest: str
    uri: str


@timed
def fetch_step(dataset: str, dataset_version: str, dataset_store: str, destination: Path) -> FetchResult:
    """Download and verify a dataset version (`latest` resolves to the newest)."""
    from workloads.datasets.manifest import MANIFEST
    from workloads.datasets.stores import open_store
    from workloads.datasets.versions import fetch

    store = open_store(dataset_store or None)
    folder = fetch(dataset, dataset_version, store, destination)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    result = FetchResult(
        version=manifest["version"],
        digest=manifest["sha256"],
        uri=store.version_uri(dataset, manifest["version"]),
    )
    _say(f"fetched {dataset} {result.version} from {result.uri}: every sha256 verified ({result.digest[:12]})")
    return result


# ----------------------------------------------------------------------------------------- preprocess


@dataclass(frozen=True)
class PreprocessResult:
    train_rows: int
    validation_rows: int


def _save_split(path: Path, images: Any, labels: Any) -> None:
    import numpy as np

    from workloads import features

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez(handle, **{SPLIT_INPUTS: features.preprocess(images), SPLIT_IMAGES: images, SPLIT_LABELS: labels})


def load_split(path: Path) -> dict[str, Any]:
    """`inputs` (preprocessed float32), `images` (raw uint8) and `labels` of a split."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in (SPLIT_INPUTS, SPLIT_IMAGES, SPLIT_LABELS)}


@timed
def preprocess_step(
    model: str,
    dataset_folder: Path,
    validation_fraction: float,
    seed: int,
    train_path: Path,
    validation_path: Path,
    reference_path: Path,
) -> PreprocessResult:
    """Stratified split, shared preprocessing, and the training feature table (the drift reference)."""
    from workloads import features
    from workloads.catalogue_entry import entry_for
    from workloads.datasets.dataset import load
    from workloads.datasets.manifest import MANIFEST
    from workloads.datasets.splits import stratified_split
    from workloads.reference import write_feature_table

    entry = entry_for(model)
    data = load(dataset_folder)
    if tuple(data.images.shape[1:]) != entry.image_shape:
        raise ValueError(
            f"dataset {data.name} has {data.images.shape[1]}x{data.images.shape[2]} images, "
            f"model {model} takes {entry.image_shape[0]}x{entry.image_shape[1]}"
        )
    if data.class_names != entry.class_names:
        raise ValueError(f"dataset classes {data.class_names} differ from model {model}'s {entry.class_names}")
    train_rows, validation_rows = stratified_split(data.labels, validation_fraction, seed)
    _save_split(train_path, data.images[train_rows], data.labels[train_rows])
    _save_split(validation_path, data.images[validation_rows], data.labels[validation_rows])
    manifest = json.loads((dataset_folder / MANIFEST).read_text(encoding="utf-8"))
    table = features.drift_features(data.images[train_rows])
    table["label"] = data.labels[train_rows]
    write_feature_table(
        table,
        reference_path,
        {"model": model, "dataset": data.name, "dataset_version": manifest["version"], "split": "train"},
    )
    _say(
        f"preprocessed {data.name}: {train_rows.size} training / {validation_rows.size} validation images; "
        f"reference table {table.shape[0]} rows x {table.shape[1]} columns"
    )
    return PreprocessResult(train_rows=int(train_rows.size), validation_rows=int(validation_rows.size))


# ---------------------------------------------------------------------------------------------- train


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    model_uri: str
    device: str
    seconds: float
    images_per_second: float
    final_loss: float


@timed
def train_step(
    model: str,
    train_path: Path,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    validation_fraction: float,
    dataset: str,
    dataset_version: str,
    dataset_digest: str,
    dataset_uri: str,
    pipeline_run_id: str,
    weights_path: Path,
) -> TrainResult:
    """Train, track the run (params, per-epoch metrics, lineage), log the model, save the weights."""
    import torch

    from workloads import features
    from workloads.catalogue_entry import TrainingParameters, entry_for
    from workloads.tracking.instrument import DatasetRef, tracked_run
    from workloads.training import train_model

    entry = entry_for(model)
    parameters = TrainingParameters(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        validation_fraction=validation_fraction,
    )
    split = load_split(train_path)
    reference = DatasetRef(name=dataset, version=dataset_version, digest=dataset_digest, source=dataset_uri)
    tags = {
        "pipeline.run_id": pipeline_run_id,
        "catalogue.model": model,
        "features.version": features.FEATURES_VERSION,
    }
    with tracked_run(
        experiment=experiment_name(model), params=parameters.as_dict(), dataset=reference, tags=tags
    ) as run:
        result = train_model(
            entry,
            split[SPLIT_INPUTS],
            split[SPLIT_LABELS],
            parameters,
            on_epoch=lambda epoch, values: run.log_metrics(values, step=epoch),
        )
        run.set_tags({"training.device": result.device})
        run.log_metrics({"training_seconds": result.seconds, "training_images_per_second": result.images_per_second})
        info = run.log_model(result.model, input_example=torch.from_numpy(split[SPLIT_INPUTS][:4]))
        run_id = run.run_id
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(result.model.state_dict(), weights_path)
    final_loss = result.history[-1]["loss"]
    _say(
        f"trained {model} on {result.device}: {epochs} epochs in {result.seconds:.1f} s "
        f"({result.images_per_second:.0f} images/s), final loss {final_loss:.4f}; MLflow run {run_id}"
    )
    return TrainResult(
        run_id=run_id,
        model_uri=info.model_uri,
        device=result.device,
        seconds=result.seconds,
        images_per_second=result.images_per_second,
        final_loss=final_loss,
    )


# ------------------------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class EvaluateResult:
    quality: float
    accuracy: float
    macro_f1: float
    passed: bool
    message: str
    report: dict[str, Any]


def gate_message(model: str, metric: str, value: float, threshold: float) -> str:
    if value >= threshold:
        return f"quality gate passed: {model} {metric} {value:.4f} >= threshold {threshold:.4f}"
    return f"quality gate FAILED: {model} {metric} {value:.4f} < threshold {threshold:.4f}; nothing will be registered"


def evaluate_step(
    model: str,
    weights_path: Path,
    validation_path: Path,
    quality_threshold: float,
    report_path: Path,
    predictions_path: Path,
) -> EvaluateResult:
    """Metrics on the held-out split and the validation predictions table.

    Pure computation: it never talks to the tracking server (importing the MLflow client alone costs
    seconds per step); the register or reject step that follows records the report on the run.
    """
    import pandas as pd
    import torch

    from workloads import features
    from workloads.catalogue_entry import entry_for
    from workloads.reference import write_feature_table
    from workloads.training import configure_threads, evaluate_model

    configure_threads()
    entry = entry_for(model)
    network = entry.build_model()
    network.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    split = load_split(validation_path)
    # One forward pass: the metrics, and the table's prediction, confidence and softmax columns.
    evaluation = evaluate_model(network, split[SPLIT_INPUTS], split[SPLIT_LABELS], entry.class_names)
    probabilities = evaluation.probabilities
    quality = evaluation.metric(entry.quality_metric)
    passed = quality >= quality_threshold
    message = gate_message(model, entry.quality_metric, quality, quality_threshold)

    report = {**evaluation.report(), "quality_metric": entry.quality_metric, "quality": quality}
    report.update({"quality_threshold": quality_threshold, "passed": passed, "metrics": evaluation.all_metrics()})
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    table = features.drift_features(split[SPLIT_IMAGES])
    table["label"] = split[SPLIT_LABELS]
    table["prediction"] = evaluation.predictions
    table["confidence"] = evaluation.confidences.astype("float64")
    # One block, after the other columns: softmax_i is output i, the class entry.class_names[i].
    softmax = pd.DataFrame(probabilities, columns=pd.Index(features.softmax_columns(probabilities.shape[1])))
    table = pd.concat([table, softmax], axis=1)
    write_feature_table(table, predictions_path, {"model": model, "split": "validation"})
    _say(f"evaluated {model} on {evaluation.samples} held-out images: {json.dumps(evaluation.headline_metrics())}")
    _say(message)
    return EvaluateResult(
        quality=quality,
        accuracy=evaluation.accuracy,
        macro_f1=evaluation.macro_f1,
        passed=passed,
        message=message,
        report=report,
    )


def record_evaluation(client: Any, run_id: str, report_path: Path) -> dict[str, Any]:
    """Put the evaluation report on the training run: `val_*` metrics, the report, the verdict tag."""
    from mlflow.entities import Metric

    report = json.loads(report_path.read_text(encoding="utf-8"))
    timestamp = int(time.time() * 1000)
    metrics = [Metric(f"val_{name}", float(value), timestamp, 0) for name, value in report["metrics"].items()]
    client.log_batch(run_id, metrics=metrics)
    client.log_dict(run_id, report, "evaluation/report.json")
    client.set_tag(run_id, "quality_gate.verdict", "passed" if report["passed"] else "failed")
    return report


# ------------------------------------------------------------------------------------ register / reject


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def promotion_decision(
    auto_promote: bool, metric: str, candidate: float, production: float | None, margin: float
) -> PromotionDecision:
    """Promote only when enabled, and only when the candidate beats production by more than `margin`."""
    if not auto_promote:
        return PromotionDecision(False, "automatic promotion is off (promote with `mlops promote`)")
    if production is None:
        return PromotionDecision(True, "no production version yet")
    if candidate > production + margin:
        return PromotionDecision(
            True, f"{metric} {candidate:.4f} beats production's {production:.4f} by more than {margin:.4f}"
        )
    return PromotionDecision(
        False, f"{metric} {candidate:.4f} does not beat production's {production:.4f} by more than {margin:.4f}"
    )


@dataclass(frozen=True)
class RegisterResult:
    version: str
    promoted: bool
    summary: str


@timed
def register_step(
    model: str,
    run_id: str,
    model_uri: str,
    accuracy: float,
    macro_f1: float,
    pipeline_run_id: str,
    auto_promote: bool,
    promotion_margin: float,
    reference_path: Path,
    predictions_path: Path | None,
    report_path: Path,
) -> RegisterResult:
    """Register with lineage tags and `quality_gate=passed`, attach the reference, alias `staging`,
    and promote to `production` when allowed and better."""
    from mlflow.tracking import MlflowClient

    from workloads.catalogue_entry import entry_for
    from workloads.reference import attach_reference
    from workloads.tracking import registry

    entry = entry_for(model)
    client = MlflowClient()
    record_evaluation(client, run_id, report_path)
    metrics = {"accuracy": accuracy, "macro_f1": macro_f1}
    version = registry.register_version(
        model, model_uri, run_id, metrics, quality_gate_passed=True, pipeline_run_id=pipeline_run_id, client=client
    )
    number = str(version.version)
    attach_reference(client, model, number, run_id, reference_path, predictions_path)
    registry.promote(model, number, to="staging", client=client)
    client.set_tag(run_id, "registered_version", number)

    production = client.get_registered_model(model).aliases.get(registry.PRODUCTION)
    production_value: float | None = None
    if production is not None:
        tag = client.get_model_version(model, production).tags.get(
            f"{registry.METRIC_TAG_PREFIX}{entry.quality_metric}"
        )
        production_value = float(tag) if tag is not None else float("-inf")
    decision = promotion_decision(
        auto_promote, entry.quality_metric, metrics[entry.quality_metric], production_value, promotion_margin
    )
    summary = f"registered {model} v{number} ({entry.quality_metric} {metrics[entry.quality_metric]:.4f}) as staging"
    if decision.promote:
        move = registry.promote(model, number, to=registry.PRODUCTION, client=client)
        summary += f"; promoted to production ({move.describe()}): {decision.reason}"
    else:
        summary += f"; production unchanged ({'v' + production if production else 'none'}): {decision.reason}"
    _say(summary)
    return RegisterResult(version=number, promoted=decision.promote, summary=summary)


@timed
def reject_step(model: str, run_id: str, quality: float, quality_threshold: float, report_path: Path) -> str:
    """Below the threshold: record the verdict on the run and say clearly that nothing was registered."""
    from mlflow.tracking import MlflowClient

    from workloads.catalogue_entry import entry_for

    entry = entry_for(model)
    summary = f"NOT REGISTERED: {gate_message(model, entry.quality_metric, quality, quality_threshold)}"
    client = MlflowClient()
    record_evaluation(client, run_id, report_path)
    client.set_tag(run_id, "registered_version", "none")
    client.set_tag(run_id, "quality_gate.summary", summary)
    _say(summary)
    return summary
