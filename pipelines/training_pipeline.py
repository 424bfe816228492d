"""The training pipeline of a catalogue model, and compiling it to YAML.

    fetch-dataset → preprocess → train → evaluate → gate ─┬─ passed → register (staging, production if the gate says)
                                                          └─ refused → reject (nothing registered)

The gate passes a candidate that reaches the threshold on the original validation split and does
not regress there against production by more than `regression_margin`; automatic promotion (dev)
needs it to beat production on the version's held-out production slice (both measured on the same
images), or on the validation split for a version without one (`pipelines.steps.gate_step`).

One pipeline per catalogue entry (`build_pipeline(entry)`): the entry's hyper-parameters are the
parameters' defaults, and its `gpu` flag decides, at compile time, whether the train step asks for
an `nvidia.com/gpu`, tolerates the GPU pools' taint and selects GPU nodes. The pipeline's one output
is a sentence saying what happened (registered as vN / not registered and why).
"""

# No `from __future__ import annotations`: KFP reads the pipeline signature's annotations as types.

import tempfile
from pathlib import Path
from typing import Any, cast

from kfp import compiler, dsl
from kfp import kubernetes as kfp_kubernetes
from kfp.dsl.pipeline_channel import PipelineParameterChannel

from pipelines import components
from pipelines.contract import (
    COMPILED_DIRECTORY,
    GPU_NODE_LABEL,
    GPU_RESOURCE,
    TRACKING_SECRET_KEYS,
    TRACKING_SECRET_NAME,
    compiled_pipeline_path,
    pipeline_name,
)
from pipelines.kfp_types import GraphComponent, pipeline
from workloads.catalogue_entry import ENTRY_VARIABLE, CatalogueEntry, entry_for, entry_to_json

DEFAULT_DATASET_VERSION = "latest"


def _uses_tracking(task: Any) -> Any:
    """The tracking URI and credentials come from a Secret as environment variables, never parameters."""
    return kfp_kubernetes.use_secret_as_env(
        task, secret_name=TRACKING_SECRET_NAME, secret_key_to_env=TRACKING_SECRET_KEYS
    )


def _resources(task: Any, cpu: str, memory: str) -> Any:
    # Every step has side effects or reads "latest": a cached result would be wrong.
    return task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory).set_caching_options(False)


def _on_gpu(task: Any) -> Any:
    task.set_accelerator_type(GPU_RESOURCE).set_accelerator_limit(1)
    kfp_kubernetes.add_toleration(task, key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")
    kfp_kubernetes.add_node_selector(task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
    return task


def _knows_its_entry(task: Any, entry: CatalogueEntry) -> Any:
    """The step reads its model's entry from the pipeline, not from a catalogue: the training image has
    none, so adding a model changes no image (workloads.catalogue_entry)."""
    return task.set_env_variable(ENTRY_VARIABLE, entry_to_json(entry))


def _step(
    task: dsl.PipelineTask,
    cpu: str,
    memory: str,
    display_name: str,
    entry: CatalogueEntry | None = None,
    tracking: bool = False,
) -> None:
    """What every step gets: its requests and memory limit, no cache, a display name; the model's entry
    where the step reads it, the tracking server's Secret where it talks to MLflow."""
    _resources(task, cpu, memory).set_display_name(display_name)
    if entry is not None:
        _knows_its_entry(task, entry)
    if tracking:
        _uses_tracking(task)


def _register_or_reject(
    entry: CatalogueEntry,
    prepared: dsl.PipelineTask,
    trained: dsl.PipelineTask,
    evaluated: dsl.PipelineTask,
    gated: dsl.PipelineTask,
) -> str:
    """The gate's two branches; their summary is the pipeline's output."""
    with dsl.If(gated.outputs["passed"] == True, name="quality-gate-passed"):  # noqa: E712 (a KFP condition)
        registered = components.register(
            model=entry.name,
            run_id=trained.outputs["run_id"],
            model_uri=trained.outputs["model_uri"],
            accuracy=evaluated.outputs["accuracy"],
            macro_f1=evaluated.outputs["macro_f1"],
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            promote=gated.outputs["promote"],
            promotion_reason=gated.outputs["reason"],
            reference_features=prepared.outputs["reference_features"],
            validation_predictions=evaluated.outputs["validation_predictions"],
            evaluation_report=evaluated.outputs["report"],
            gate_report=gated.outputs["gate_report"],
        )
        _step(registered, "250m", "1Gi", "register (staging; production if better)", entry, tracking=True)
    with dsl.Else(name="quality-gate-failed"):
        rejected = components.reject(
            model=entry.name,
            run_id=trained.outputs["run_id"],
            gate_verdict=gated.outputs["verdict"],
            evaluation_report=evaluated.outputs["report"],
        )
        _step(rejected, "250m", "1Gi", "below threshold: nothing registered", entry, tracking=True)
    # `-> str` is what KFP reads as the pipeline's output type; the value is KFP's OneOf of the
    # two branches' outputs, which it resolves at run time.
    summaries = (registered.outputs["summary"], rejected.output)  # both str outputs: parameter channels
    return cast(str, dsl.OneOf(*(cast(PipelineParameterChannel, summary) for summary in summaries)))


def build_pipeline(entry: CatalogueEntry) -> GraphComponent:
    """The KFP pipeline (a GraphComponent) that trains `entry`."""
    defaults = entry.training

    @pipeline(
        name=pipeline_name(entry.name),
        description=f"Train, evaluate and (if {entry.quality_metric} >= threshold) register {entry.name}.",
    )
    def training_pipeline(
        dataset_version: str = DEFAULT_DATASET_VERSION,
        dataset_store: str = "",
        epochs: int = defaults.epochs,
        batch_size: int = defaults.batch_size,
        learning_rate: float = defaults.learning_rate,
        seed: int = defaults.seed,
        validation_fraction: float = defaults.validation_fraction,
        quality_threshold: float = entry.quality_threshold,
        auto_promote: bool = False,
        promotion_margin: float = entry.promotion_margin,
        regression_margin: float = entry.regression_margin,
    ) -> str:
        """dataset_store '' = the MLOPS_DATASET_STORE of the step's environment (else .mlops/datasets).
        auto_promote: move `production` to a better candidate (dev only)."""
        fetched = components.fetch_dataset(
            dataset=entry.dataset, dataset_version=dataset_version, dataset_store=dataset_store
        )
        _step(fetched, "250m", "1Gi", "fetch dataset (verify sha256)")

        prepared = components.preprocess(
            model=entry.name,
            dataset_files=fetched.outputs["dataset_files"],
            validation_fraction=validation_fraction,
            seed=seed,
        )
        _step(prepared, "500m", "2Gi", "preprocess (shared features)", entry)

        trained = components.train(
            model=entry.name,
            train_split=prepared.outputs["train_split"],
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            validation_fraction=validation_fraction,
            dataset=entry.dataset,
            dataset_version=fetched.outputs["version"],
            dataset_digest=fetched.outputs["digest"],
            dataset_uri=fetched.outputs["uri"],
            pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        _step(trained, "1", "4Gi", "train on GPU" if entry.gpu else "train on CPU", entry, tracking=True)
        if entry.gpu:
            _on_gpu(trained)

        evaluated = components.evaluate(
            model=entry.name,
            weights=trained.outputs["weights"],
            validation_split=prepared.outputs["validation_split"],
            production_split=prepared.outputs["production_split"],
            quality_threshold=quality_threshold,
        )
        _step(evaluated, "500m", "2Gi", "evaluate (validation split, production slice)", entry)

        gated = components.gate(
            model=entry.name,
            evaluation_report=evaluated.outputs["report"],
            production_split=prepared.outputs["production_split"],
            quality_threshold=quality_threshold,
            regression_margin=regression_margin,
            auto_promote=auto_promote,
            promotion_margin=promotion_margin,
        )
        _step(gated, "500m", "2Gi", "gate (threshold, no regression, vs production)", entry, tracking=True)
        return _register_or_reject(entry, prepared, trained, evaluated, gated)

    return training_pipeline


def pipeline_for(model: str) -> GraphComponent:
    """The pipeline of catalogue model `model` (UnknownModelError for an unknown name); in the drift
    job's image, which has no catalogue, the model is the one its MLOPS_CATALOGUE_ENTRY describes."""
    return build_pipeline(entry_for(model))


def compile_pipeline(model: str, directory: Path | None = None) -> Path:
    """Write `<directory>/<model>.yaml` (default `pipelines/compiled/`) and return its path."""
    path = compiled_pipeline_path(model, directory or COMPILED_DIRECTORY)
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_for(model), str(path))
    return path


def compile_all(directory: Path | None = None) -> list[Path]:
    """Compile every catalogue model's pipeline (in a checkout: only it has the whole catalogue)."""
    from workloads import catalogue

    return [compile_pipeline(model, directory) for model in catalogue.names()]


def compiled_text(model: str) -> str:
    """The compiled YAML of `model` as text, fresh from the code (not the committed file)."""
    with tempfile.TemporaryDirectory(prefix="mlops-compile-") as scratch:
        return compile_pipeline(model, Path(scratch)).read_text(encoding="utf-8")
