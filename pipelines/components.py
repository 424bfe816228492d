"""KFP v2 lightweight components: one per step, each a thin wrapper over `pipelines.steps`.

KFP ships each function's source into the step's container and runs it there, so the bodies
import what they need; the work itself lives in `pipelines.steps` (and `workloads`), which the
training image (`pipelines/Dockerfile`) installs. `install_kfp_package=False`: the image already has
kfp, so a step starts without reaching a package index. Each step runs in a process of its own,
so each body ends with `prepare_process_exit()`, which keeps that process's shutdown short.

No `from __future__ import annotations` here: KFP reads the annotations as real types. The return
annotations are KFP's documented `NamedTuple("...", [...])` call form, which a type checker refuses
as a type expression (hence the one rule switched off below, for this file): a class defined beside
the function would not exist in the step's container, which runs the function's source alone, and a
comment on the `def` line would be shipped with it (changing every compiled pipeline).
"""

# pyright: reportInvalidTypeForm=false

from typing import NamedTuple

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from pipelines.contract import TRAINING_IMAGE_PLACEHOLDER
from pipelines.kfp_types import component

IMAGE = TRAINING_IMAGE_PLACEHOLDER


@component(base_image=IMAGE, install_kfp_package=False)
def fetch_dataset(
    dataset: str,
    dataset_version: str,
    dataset_store: str,
    dataset_files: Output[Dataset],
) -> NamedTuple("FetchOutputs", [("version", str), ("digest", str), ("uri", str)]):
    """Download a dataset version and verify every sha256 (a mismatch fails the run here)."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import fetch_step, prepare_process_exit

    result = fetch_step(dataset, dataset_version, dataset_store, Path(dataset_files.path))
    dataset_files.metadata.update({"version": result.version, "sha256": result.digest, "uri": result.uri})
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("FetchOutputs", ["version", "digest", "uri"])(result.version, result.digest, result.uri)


@component(base_image=IMAGE, install_kfp_package=False)
def preprocess(
    model: str,
    dataset_files: Input[Dataset],
    validation_fraction: float,
    seed: int,
    train_split: Output[Dataset],
    validation_split: Output[Dataset],
    reference_features: Output[Dataset],
    production_split: Output[Dataset],
) -> NamedTuple("PreprocessOutputs", [("train_rows", int), ("validation_rows", int), ("production_rows", int)]):
    """Split (stratified over the original rows, seeded), preprocess with the shared features module,
    write the reference table and the held-out production slice."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import prepare_process_exit, preprocess_step

    result = preprocess_step(
        model,
        Path(dataset_files.path),
        validation_fraction,
        seed,
        Path(train_split.path),
        Path(validation_split.path),
        Path(reference_features.path),
        Path(production_split.path),
    )
    reference_features.metadata.update({"format": "parquet", "rows": result.train_rows})
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("PreprocessOutputs", ["train_rows", "validation_rows", "production_rows"])(
        result.train_rows, result.validation_rows, result.production_rows
    )


@component(base_image=IMAGE, install_kfp_package=False)
def train(
    model: str,
    train_split: Input[Dataset],
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
    weights: Output[Model],
) -> NamedTuple("TrainOutputs", [("run_id", str), ("model_uri", str), ("device", str), ("images_per_second", float)]):
    """Train on the split; track the MLflow run with lineage; log the model; keep the weights."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import prepare_process_exit, train_step
    from workloads.catalogue_entry import TrainingParameters
    from workloads.tracking.instrument import DatasetRef

    result = train_step(
        model,
        Path(train_split.path),
        TrainingParameters(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            validation_fraction=validation_fraction,
        ),
        DatasetRef(name=dataset, version=dataset_version, digest=dataset_digest, source=dataset_uri),
        pipeline_run_id,
        Path(weights.path),
    )
    weights.metadata.update({"framework": "pytorch", "mlflow_run_id": result.run_id, "device": result.device})
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("TrainOutputs", ["run_id", "model_uri", "device", "images_per_second"])(
        result.run_id, result.model_uri, result.device, result.images_per_second
    )


@component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    model: str,
    weights: Input[Model],
    validation_split: Input[Dataset],
    production_split: Input[Dataset],
    quality_threshold: float,
    metrics: Output[Metrics],
    confusion_matrix: Output[ClassificationMetrics],
    report: Output[Dataset],
    validation_predictions: Output[Dataset],
) -> NamedTuple("EvaluateOutputs", [("quality", float), ("accuracy", float), ("macro_f1", float), ("verdict", str)]):
    """Accuracy, macro-F1, per-class metrics and the confusion matrix on the held-out split (no tracking:
    the register or reject step records the report on the run)."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import evaluate_step, prepare_process_exit

    result = evaluate_step(
        model,
        Path(weights.path),
        Path(validation_split.path),
        quality_threshold,
        Path(report.path),
        Path(validation_predictions.path),
        Path(production_split.path),
    )
    metrics.log_metric("accuracy", result.accuracy)
    recent = result.report["production_holdout"]
    if recent:
        for name, value in recent["metrics"].items():
            metrics.log_metric(f"recent_{name}", value)
    metrics.log_metric("macro_f1", result.macro_f1)
    for name, values in result.report["per_class"].items():
        metrics.log_metric(f"f1.{name}", values["f1"])
    confusion_matrix.log_confusion_matrix(result.report["class_names"], result.report["confusion_matrix"])
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("EvaluateOutputs", ["quality", "accuracy", "macro_f1", "verdict"])(
        result.quality, result.accuracy, result.macro_f1, result.message
    )


@component(base_image=IMAGE, install_kfp_package=False)
def gate(
    model: str,
    evaluation_report: Input[Dataset],
    production_split: Input[Dataset],
    quality_threshold: float,
    regression_margin: float,
    auto_promote: bool,
    promotion_margin: float,
    gate_report: Output[Dataset],
) -> NamedTuple("GateOutputs", [("passed", bool), ("promote", bool), ("verdict", str), ("reason", str)]):
    """Threshold and no regression against production on the original split; promotion on the recent slice."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import gate_step, prepare_process_exit

    result = gate_step(
        model,
        Path(evaluation_report.path),
        Path(production_split.path),
        quality_threshold,
        regression_margin,
        auto_promote,
        promotion_margin,
        Path(gate_report.path),
    )
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("GateOutputs", ["passed", "promote", "verdict", "reason"])(
        result.passed, result.promote, result.message, result.report["reason"]
    )


@component(base_image=IMAGE, install_kfp_package=False)
def register(
    model: str,
    run_id: str,
    model_uri: str,
    accuracy: float,
    macro_f1: float,
    pipeline_run_id: str,
    promote: bool,
    promotion_reason: str,
    reference_features: Input[Dataset],
    validation_predictions: Input[Dataset],
    evaluation_report: Input[Dataset],
    gate_report: Input[Dataset],
) -> NamedTuple("RegisterOutputs", [("summary", str), ("version", str), ("promoted", bool)]):
    """Register the candidate (staging), attach the reference table, promote when the gate said so."""
    from collections import namedtuple
    from pathlib import Path

    from pipelines.steps import prepare_process_exit, register_step

    result = register_step(
        model,
        run_id,
        model_uri,
        {"accuracy": accuracy, "macro_f1": macro_f1},
        pipeline_run_id,
        promote,
        promotion_reason,
        Path(reference_features.path),
        Path(validation_predictions.path),
        Path(evaluation_report.path),
        Path(gate_report.path),
    )
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return namedtuple("RegisterOutputs", ["summary", "version", "promoted"])(
        result.summary, result.version, result.promoted
    )


@component(base_image=IMAGE, install_kfp_package=False)
def reject(model: str, run_id: str, gate_verdict: str, evaluation_report: Input[Dataset]) -> str:
    """The gate refused the candidate: record it on the run and say so; nothing is registered."""
    from pathlib import Path

    from pipelines.steps import prepare_process_exit, reject_step

    summary = reject_step(model, run_id, gate_verdict, Path(evaluation_report.path))
    prepare_process_exit()  # last: spares the interpreter's shutdown a full collection
    return summary
