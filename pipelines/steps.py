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
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the step functions import what they use (see above)
    import numpy as np

    from workloads.catalogue_entry import TrainingParameters
    from workloads.tracking.instrument import DatasetRef

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
    production_rows: int = 0
    """Held-out production images (the recent slice)."""


def _save_split(path: Path, images: Any, labels: Any) -> None:
    import numpy as np

    from workloads import features

    path.parent.mkdir(parents=True, exist_ok=True)
    # An empty split (a version without held-out production images) keeps the inputs' shape.
    inputs = features.preprocess(images) if len(images) else np.zeros((0, 1, *images.shape[1:]), dtype=np.float32)
    with path.open("wb") as handle:
        np.savez(handle, **{SPLIT_INPUTS: inputs, SPLIT_IMAGES: images, SPLIT_LABELS: labels})


def load_split(path: Path) -> dict[str, Any]:
    """`inputs` (preprocessed float32), `images` (raw uint8) and `labels` of a split."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in (SPLIT_INPUTS, SPLIT_IMAGES, SPLIT_LABELS)}


def reference_groups(dataset_folder: Path, roles: np.ndarray) -> np.ndarray:
    """Per row of the dataset, the distribution it came from: `original`, or `production <day>` for
    a labelled production image (the prediction day it was served on)."""
    import numpy as np

    from workloads.datasets.roles import ORIGINAL, prediction_days
    from workloads.reference import ORIGINAL_GROUP, production_group

    groups = np.full(roles.shape[0], ORIGINAL_GROUP, dtype=object)
    groups[roles != ORIGINAL] = [production_group(day) for day in prediction_days(dataset_folder, roles)]
    return groups


@timed
def preprocess_step(
    model: str,
    dataset_folder: Path,
    validation_fraction: float,
    seed: int,
    train_path: Path,
    validation_path: Path,
    reference_path: Path,
    production_path: Path | None = None,
) -> PreprocessResult:
    """Stratified split, shared preprocessing, and the training feature table (the drift reference).

    The validation split is drawn from the dataset's original rows only (`workloads.datasets.roles`),
    so every version of a dataset is judged on the same images; labelled production images are
    trained on, except the held-out production slice, written to `production_path` (empty for a
    version without production rows). The reference is every row trained on, each marked with the
    distribution it came from (`workloads.reference`): a version that learned a new distribution
    compares the days it serves with that distribution too.
    """
    import numpy as np

    from workloads import features
    from workloads.catalogue_entry import entry_for
    from workloads.datasets.dataset import load
    from workloads.datasets.manifest import MANIFEST
    from workloads.datasets.roles import ORIGINAL, PRODUCTION_HOLDOUT, PRODUCTION_TRAIN, load_roles
    from workloads.datasets.splits import stratified_split
    from workloads.reference import REFERENCE_GROUP_COLUMN, write_feature_table

    entry = entry_for(model)
    data = load(dataset_folder)
    if tuple(data.images.shape[1:]) != entry.image_shape:
        raise ValueError(
            f"dataset {data.name} has {data.images.shape[1]}x{data.images.shape[2]} images, "
            f"model {model} takes {entry.image_shape[0]}x{entry.image_shape[1]}"
        )
    if data.class_names != entry.class_names:
        raise ValueError(f"dataset classes {data.class_names} differ from model {model}'s {entry.class_names}")
    roles = load_roles(dataset_folder, data.images.shape[0])
    original = np.flatnonzero(roles == ORIGINAL)
    original_train, original_validation = stratified_split(data.labels[original], validation_fraction, seed)
    train_rows = np.concatenate([original[original_train], np.flatnonzero(roles == PRODUCTION_TRAIN)])
    validation_rows = original[original_validation]
    holdout_rows = np.flatnonzero(roles == PRODUCTION_HOLDOUT)
    _save_split(train_path, data.images[train_rows], data.labels[train_rows])
    _save_split(validation_path, data.images[validation_rows], data.labels[validation_rows])
    if production_path is not None:
        _save_split(production_path, data.images[holdout_rows], data.labels[holdout_rows])
    manifest = json.loads((dataset_folder / MANIFEST).read_text(encoding="utf-8"))
    table = features.drift_features(data.images[train_rows])
    table["label"] = data.labels[train_rows]
    table[REFERENCE_GROUP_COLUMN] = reference_groups(dataset_folder, roles)[train_rows]
    write_feature_table(
        table,
        reference_path,
        {"model": model, "dataset": data.name, "dataset_version": manifest["version"], "split": "train"},
    )
    produced = int((roles == PRODUCTION_TRAIN).sum())
    _say(
        f"preprocessed {data.name} {manifest['version']}: {train_rows.size} training images "
        f"({produced} of them labelled production images) / {validation_rows.size} validation images / "
        f"{holdout_rows.size} held-out production images; reference table {table.shape[0]} rows x "
        f"{table.shape[1]} columns"
    )
    return PreprocessResult(
        train_rows=int(train_rows.size),
        validation_rows=int(validation_rows.size),
        production_rows=int(holdout_rows.size),
    )


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
    parameters: TrainingParameters,
    dataset: DatasetRef,
    pipeline_run_id: str,
    weights_path: Path,
) -> TrainResult:
    """Train, track the run (params, per-epoch metrics, lineage on `dataset`), log the model, save the weights."""
    import torch

    from workloads import features
    from workloads.catalogue_entry import entry_for
    from workloads.tracking.instrument import tracked_run
    from workloads.training import train_model

    entry = entry_for(model)
    split = load_split(train_path)
    tags = {
        "pipeline.run_id": pipeline_run_id,
        "catalogue.model": model,
        "features.version": features.FEATURES_VERSION,
    }
    with tracked_run(experiment=experiment_name(model), params=parameters.as_dict(), dataset=dataset, tags=tags) as run:
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
        f"trained {model} on {result.device}: {parameters.epochs} epochs in {result.seconds:.1f} s "
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
    production_path: Path | None = None,
) -> EvaluateResult:
    """Metrics on the held-out split (and on the held-out production slice, when the version has one)
    and the validation predictions table.

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
    recent = _recent_slice_metrics(network, production_path, entry)
    report["production_holdout"] = recent
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
    if recent is not None:
        _say(f"evaluated {model} on {recent['samples']} held-out production images: {json.dumps(recent['metrics'])}")
    _say(message)
    return EvaluateResult(
        quality=quality,
        accuracy=evaluation.accuracy,
        macro_f1=evaluation.macro_f1,
        passed=passed,
        message=message,
        report=report,
    )


def _recent_slice_metrics(network: Any, production_path: Path | None, entry: Any) -> dict[str, Any] | None:
    """Headline metrics on the held-out production slice; None when the version has none."""
    from workloads.training import evaluate_model

    if production_path is None:
        return None
    split = load_split(production_path)
    if not len(split[SPLIT_LABELS]):
        return None
    evaluation = evaluate_model(network, split[SPLIT_INPUTS], split[SPLIT_LABELS], entry.class_names)
    metrics = evaluation.headline_metrics()
    return {"samples": evaluation.samples, "quality": evaluation.metric(entry.quality_metric), "metrics": metrics}


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


GATE_PRODUCTION_RECENT_TAG = "gate.production_recent"
"""On a registered version: production's quality metric on the version's held-out production slice."""


@dataclass(frozen=True)
class GateResult:
    passed: bool
    """Register the candidate: quality >= threshold and no regression on the original split."""
    promote: bool
    """Move `production` to it (dev's automatic promotion)."""
    message: str
    report: dict[str, Any]


def regression_check(
    metric: str, candidate: float, production: float | None, production_version: str | None, margin: float
) -> str | None:
    """Why a candidate regresses on the original validation split by more than `margin`; None when it does not."""
    if production is None or candidate >= production - margin:
        return None
    return (
        f"regresses on the original validation split: {metric} {candidate:.4f} < production v{production_version}'s "
        f"{production:.4f} - margin {margin:.4f}; nothing will be registered"
    )


def _production_on_recent_slice(model: str, version: str, production_path: Path) -> float:
    """Production's quality metric on the same held-out production slice as the candidate's."""
    import numpy as np
    import torch
    from mlflow.pytorch import load_model

    from workloads.catalogue_entry import entry_for
    from workloads.training import EVALUATION_BATCH, classification_metrics

    entry = entry_for(model)
    split = load_split(production_path)
    # As served: the registry's model (a torch.export program, which has no eval mode), forward passes only.
    module = load_model(f"models:/{model}/{version}", map_location="cpu")
    inputs = split[SPLIT_INPUTS]
    with torch.inference_mode():
        logits = [
            module(torch.from_numpy(np.ascontiguousarray(inputs[start : start + EVALUATION_BATCH]))).numpy()
            for start in range(0, len(inputs), EVALUATION_BATCH)
        ]
    predictions = np.concatenate(logits).argmax(axis=1)
    accuracy, macro_f1, _, _ = classification_metrics(split[SPLIT_LABELS], predictions, entry.class_names)
    return {"accuracy": accuracy, "macro_f1": macro_f1}[entry.quality_metric]


@timed
def gate_step(
    model: str,
    report_path: Path,
    production_path: Path,
    quality_threshold: float,
    regression_margin: float,
    auto_promote: bool,
    promotion_margin: float,
    gate_report_path: Path,
) -> GateResult:
    """The quality gate against the threshold and against production, and the promotion decision.

    Registered only when the candidate reaches the threshold on the original validation split and
    does not fall below production's metric there (its registered `metric.<name>`, measured on the
    same split) by more than `regression_margin`. Promoted (when allowed) when it beats production by
    more than `promotion_margin` on the held-out production slice — production measured on the same
    images here — or, for a version without that slice, on the validation split.
    """
    from mlflow.tracking import MlflowClient

    from workloads.catalogue_entry import entry_for
    from workloads.tracking import registry

    entry = entry_for(model)
    metric = entry.quality_metric
    evaluation = json.loads(report_path.read_text(encoding="utf-8"))
    candidate, recent = float(evaluation["quality"]), evaluation.get("production_holdout")
    client = MlflowClient()
    production = _alias_version(client, model, registry.PRODUCTION)
    production_value = None
    if production is not None:
        tag = client.get_model_version(model, production).tags.get(f"{registry.METRIC_TAG_PREFIX}{metric}")
        production_value = float(tag) if tag is not None else None
    report: dict[str, Any] = {"production_version": production, "production_original": production_value}
    failure = None if candidate >= quality_threshold else gate_message(model, metric, candidate, quality_threshold)
    failure = failure or regression_check(metric, candidate, production_value, production, regression_margin)
    if failure is not None:
        decision = PromotionDecision(False, "not registered")
    elif recent is not None and production is not None and auto_promote:
        production_recent = _production_on_recent_slice(model, production, production_path)
        report["production_recent"] = production_recent
        decision = promotion_decision(True, metric, float(recent["quality"]), production_recent, promotion_margin)
        decision = PromotionDecision(decision.promote, f"on the held-out production slice: {decision.reason}")
    else:
        decision = promotion_decision(auto_promote, metric, candidate, production_value, promotion_margin)
    message = (
        failure or f"{gate_message(model, metric, candidate, quality_threshold)}; no regression against production"
    )
    report.update(
        {"passed": failure is None, "promote": decision.promote, "reason": decision.reason, "message": message}
    )
    report["candidate_original"], report["candidate_recent"] = candidate, recent["quality"] if recent else None
    gate_report_path.parent.mkdir(parents=True, exist_ok=True)
    gate_report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    _say(message)
    if failure is None:
        _say(f"promotion: {'yes' if decision.promote else 'no'}, {decision.reason}")
    return GateResult(passed=failure is None, promote=decision.promote, message=message, report=report)


def _alias_version(client: Any, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


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
    metrics: dict[str, float],
    pipeline_run_id: str,
    promote: bool,
    promotion_reason: str,
    reference_path: Path,
    predictions_path: Path | None,
    report_path: Path,
    gate_report_path: Path | None = None,
) -> RegisterResult:
    """Register with lineage tags, `metrics` (the validation split's, the entry's quality metric among
    them) and `quality_gate=passed`, attach the reference, alias `staging`, and move `production` when
    the gate decided so (`gate_step`; its report goes on the run, and production's accuracy on the same
    held-out slice on the version, `gate.production_recent`)."""
    from mlflow.tracking import MlflowClient

    from workloads.catalogue_entry import entry_for
    from workloads.tracking import registry

    entry = entry_for(model)
    client = MlflowClient()
    report = record_evaluation(client, run_id, report_path)
    metrics = dict(metrics)  # a copy: the production slice's join the caller's
    recent = report.get("production_holdout")
    if recent:  # the held-out production slice, beside the original split's metrics
        metrics.update({f"recent_{name}": float(value) for name, value in recent["metrics"].items()})
    version = registry.register_version(
        model, model_uri, run_id, metrics, quality_gate_passed=True, pipeline_run_id=pipeline_run_id, client=client
    )
    number = str(version.version)
    from workloads.reference import attach_reference

    attach_reference(client, model, number, run_id, reference_path, predictions_path)
    if gate_report_path is not None:
        gate = json.loads(gate_report_path.read_text(encoding="utf-8"))
        client.log_dict(run_id, gate, "evaluation/gate.json")
        if gate.get("production_recent") is not None:
            client.set_model_version_tag(model, number, GATE_PRODUCTION_RECENT_TAG, str(gate["production_recent"]))
    production = client.get_registered_model(model).aliases.get(registry.PRODUCTION)
    registry.promote(model, number, to="staging", client=client)
    client.set_tag(run_id, "registered_version", number)
    summary = f"registered {model} v{number} ({entry.quality_metric} {metrics[entry.quality_metric]:.4f}) as staging"
    if promote:
        move = registry.promote(model, number, to=registry.PRODUCTION, client=client)
        summary += f"; promoted to production ({move.describe()}): {promotion_reason}"
    else:
        summary += f"; production unchanged ({'v' + production if production else 'none'}): {promotion_reason}"
    _say(summary)
    return RegisterResult(version=number, promoted=promote, summary=summary)


@timed
def reject_step(model: str, run_id: str, gate_verdict: str, report_path: Path) -> str:
    """The gate refused the candidate: record the verdict on the run and say clearly that nothing was registered."""
    from mlflow.tracking import MlflowClient

    summary = f"NOT REGISTERED: {gate_verdict}"
    client = MlflowClient()
    record_evaluation(client, run_id, report_path)
    client.set_tag(run_id, "quality_gate.verdict", "failed")  # a regression fails it, whatever the threshold said
    client.set_tag(run_id, "registered_version", "none")
    client.set_tag(run_id, "quality_gate.summary", summary)
    LOG.info("%s: %s", model, summary)
    _say(summary)
    return summary
