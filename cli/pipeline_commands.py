"""`mlops pipeline ...`: compile the training pipelines, run one locally (kfp.local) or on a cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.errors import RUN_FAILED_EXIT_CODE, fail
from cli.options import ModelArgument, OnlyModelOption
from workloads.settings import TrackingClientVariables

app = typer.Typer(no_args_is_help=True, help="Training pipelines (Kubeflow Pipelines v2).")


def _entry(model: str) -> Any:
    from workloads import catalogue

    try:
        return catalogue.get(model)
    except catalogue.UnknownModelError as error:
        fail(str(error))


@app.command("compile")
def compile_command(
    out: Annotated[Path | None, typer.Option("--out", help="output folder (default: pipelines/compiled)")] = None,
    model: OnlyModelOption = None,
) -> None:
    """Write one pipeline YAML per catalogue model and print the paths."""
    from pipelines.training_pipeline import compile_all, compile_pipeline

    if model is not None:
        _entry(model)
        paths = [compile_pipeline(model, out)]
    else:
        paths = compile_all(out)
    for path in paths:
        typer.echo(str(path))


def _pipeline_arguments(
    epochs: int | None,
    threshold: float | None,
    auto_promote: bool,
    dataset_version: str,
    store: str | None,
) -> dict[str, Any]:
    arguments: dict[str, Any] = {"dataset_version": dataset_version, "auto_promote": auto_promote}
    if epochs is not None:
        if epochs < 1:
            fail(f"--epochs must be >= 1, got {epochs}")
        arguments["epochs"] = epochs
    if threshold is not None:
        if not 0 <= threshold <= 1:
            fail(f"--threshold must be in [0, 1], got {threshold}")
        arguments["quality_threshold"] = threshold
    if store:
        arguments["dataset_store"] = store
    return arguments


def _run_local(entry: Any, arguments: dict[str, Any], store: str | None, pipeline_root: Path | None) -> None:
    from pipelines.local import PipelineRunError, run_local
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.stores import open_store
    from workloads.datasets.versions import LATEST, resolve_version, snapshot

    try:
        opened = open_store(store)
        version = arguments["dataset_version"]
        if version == LATEST and not opened.versions(entry.dataset):
            typer.echo(f"no snapshot of {entry.dataset} in {opened.uri} yet: taking one", err=True)
            snapshot(entry.dataset, opened)
        resolved = resolve_version(entry.dataset, version, opened)
    except DatasetError as error:
        fail(str(error))
    # The steps run as subprocesses (possibly elsewhere): give them the store's absolute form.
    arguments = {**arguments, "dataset_store": opened.uri, "dataset_version": resolved}

    server = None
    if not os.environ.get(TrackingClientVariables.URI):
        from workloads.tracking.local import LocalTrackingError, start_local_tracking

        typer.echo(
            f"{TrackingClientVariables.URI} not set: starting a local tracking server (.mlops/tracking)...", err=True
        )
        try:
            server = start_local_tracking()
        except LocalTrackingError as error:
            fail(str(error), code=RUN_FAILED_EXIT_CODE)
        os.environ.update(server.client_environment())
        typer.echo(f"tracking server: {server.url}", err=True)
    try:
        result = run_local(entry.name, pipeline_root=pipeline_root, **arguments)
    except PipelineRunError as error:
        fail(str(error), code=RUN_FAILED_EXIT_CODE)
    finally:
        if server is not None:
            server.stop()
    typer.echo(result.summary)


@app.command("run")
def run(
    model: ModelArgument,
    local: Annotated[bool, typer.Option("--local", help="run on this machine with kfp.local")] = False,
    host: Annotated[str | None, typer.Option("--host", help="KFP API endpoint to submit to")] = None,
    epochs: Annotated[int | None, typer.Option(help="override the catalogue's epochs")] = None,
    threshold: Annotated[float | None, typer.Option(help="override the quality threshold")] = None,
    auto_promote: Annotated[
        bool, typer.Option("--auto-promote", help="promote to production if better (dev only)")
    ] = False,
    dataset_version: Annotated[str, typer.Option(help="dataset version or 'latest'")] = "latest",
    # Not resolved against the caller's directory: a cluster run (--host) must name s3://, and says so.
    store: Annotated[
        str | None,
        typer.Option(
            help="dataset store (default: $MLOPS_DATASET_STORE, else .mlops/datasets; --host needs s3://BUCKET/PREFIX)"
        ),
    ] = None,
    pipeline_root: Annotated[
        Path | None, typer.Option(help="local artifacts folder (default: .mlops/pipelines)")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="training image for --host (default: $MLOPS_TRAINING_IMAGE)")
    ] = None,
    namespace: Annotated[str | None, typer.Option(help="KFP namespace for --host")] = None,
) -> None:
    """Run MODEL's training pipeline: --local (kfp.local, tracking from MLFLOW_TRACKING_URI or a
    local server started for the run) or --host URL (submit to Kubeflow Pipelines)."""
    entry = _entry(model)
    if local == (host is not None):
        fail("choose exactly one of --local or --host URL")
    arguments = _pipeline_arguments(epochs, threshold, auto_promote, dataset_version, store)
    if local:
        _run_local(entry, arguments, store, pipeline_root)
        return
    from pipelines.remote import SubmissionError, submit

    try:
        submitted = submit(entry.name, str(host), image=image, arguments=arguments, namespace=namespace)
    except SubmissionError as error:
        fail(str(error))
    typer.echo(
        f"submitted {entry.name} to {submitted.host}: run {submitted.run_id} (experiment {submitted.experiment})"
    )
