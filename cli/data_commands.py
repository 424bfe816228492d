"""`mlops data ...`: versioned dataset snapshots (immutable, sha256-verified)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.errors import fail
from cli.options import DatasetStoreOption, LabelsStoreOption, PredictionsStoreOption

app = typer.Typer(no_args_is_help=True, help="Versioned datasets: snapshot, list, verify.")


@app.command("snapshot")
def snapshot(
    dataset: Annotated[
        str, typer.Argument(help="dataset name (digits, surface-defects); with --with-labels a model name")
    ],
    store: DatasetStoreOption = None,
    version: Annotated[str | None, typer.Option(help="version name (default: the next vN)")] = None,
    seed: Annotated[int, typer.Option(help="seed of generated datasets")] = 0,
    with_labels: Annotated[
        bool,
        typer.Option(
            "--with-labels",
            help="a new version = --base + the model's labelled production images (prediction log joined "
            "with the labels store), a held-out slice of them kept out of training; reads --predictions-store, "
            "--labels-store, --last-day, --days, --holdout-fraction",
        ),
    ] = False,
    base: Annotated[str, typer.Option(help="--with-labels: the version to add to (or latest)")] = "latest",
    predictions_store: PredictionsStoreOption = None,
    labels_store: LabelsStoreOption = None,
    last_day: Annotated[
        str | None, typer.Option(help="--with-labels: last prediction day, YYYY-MM-DD (default: today, UTC)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="--with-labels: prediction days read")] = 14,
    holdout_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="--with-labels: share of labelled images held out")
    ] = 0.2,
) -> None:
    """Write an immutable version of DATASET (files + sha256 manifest) and print its version."""
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.versions import snapshot as snapshot_version

    if with_labels:
        _snapshot_with_labels(
            dataset, store, version, base, predictions_store, labels_store, last_day, days, holdout_fraction
        )
        return
    try:
        published = snapshot_version(dataset, store, version=version, seed=seed)
    except DatasetError as error:
        fail(str(error))
    typer.echo(f"{published.dataset} {published.version} sha256={published.digest} at {published.uri}", err=True)
    typer.echo(published.version)


def _snapshot_with_labels(
    model: str,
    store: str | None,
    version: str | None,
    base: str,
    predictions_store: str | None,
    labels_store: str | None,
    last_day: str | None,
    days: int,
    holdout_fraction: float,
) -> None:
    import os
    from datetime import UTC, date, datetime

    from workloads import catalogue
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.stores import open_store
    from workloads.labelled_datasets import LabelledWindow, snapshot_with_labels
    from workloads.serving.settings import DEFAULT_LABELS_STORE, DEFAULT_PREDICTIONS_STORE, ServingVariables

    try:
        entry = catalogue.get(model)
    except catalogue.UnknownModelError as error:
        fail(str(error))
    try:
        last = date.fromisoformat(last_day) if last_day else datetime.now(tz=UTC).date()
    except ValueError:
        fail(f"--last-day {last_day!r}: expected YYYY-MM-DD")
    window = LabelledWindow.ending(
        model,
        predictions_store or os.environ.get(ServingVariables.PREDICTIONS_STORE) or DEFAULT_PREDICTIONS_STORE,
        labels_store or os.environ.get(ServingVariables.LABELS_STORE) or DEFAULT_LABELS_STORE,
        last,
        days,
    )
    try:
        made = snapshot_with_labels(entry, window, open_store(store), base, holdout_fraction, version)
    except (DatasetError, OSError, ValueError) as error:
        fail(str(error))
    typer.echo(made.describe(), err=True)
    typer.echo(made.published.version)


@app.command("list")
def list_versions(
    dataset: Annotated[str, typer.Argument(help="dataset name")],
    store: DatasetStoreOption = None,
) -> None:
    """Print the published versions of DATASET, oldest first."""
    from workloads.datasets.builders import BUILDERS
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.versions import list_versions as published_versions

    if dataset not in BUILDERS:
        fail(f"unknown dataset {dataset!r}: known datasets are {', '.join(BUILDERS)}")
    try:
        versions = published_versions(dataset, store)
    except DatasetError as error:
        fail(str(error))
    for name in versions:
        typer.echo(name)


@app.command("verify")
def verify(
    dataset: Annotated[str, typer.Argument(help="dataset name")],
    version: Annotated[str, typer.Argument(help="version, or latest")] = "latest",
    store: DatasetStoreOption = None,
) -> None:
    """Download VERSION into a scratch folder and check every sha256."""
    import tempfile

    from workloads.datasets.errors import DatasetError
    from workloads.datasets.manifest import MANIFEST
    from workloads.datasets.versions import fetch

    with tempfile.TemporaryDirectory(prefix="mlops-verify-") as scratch:
        try:
            folder = fetch(dataset, version, store, scratch)
        except DatasetError as error:
            fail(str(error))
        manifest = (folder / MANIFEST).read_text(encoding="utf-8")
    import json

    recorded = json.loads(manifest)
    typer.echo(f"{dataset} {recorded['version']}: {len(recorded['files'])} files, every sha256 matches")
