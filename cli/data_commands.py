"""`mlops data ...`: versioned dataset snapshots (immutable, sha256-verified)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.caller_paths import absolute_option
from cli.errors import fail

app = typer.Typer(no_args_is_help=True, help="Versioned datasets: snapshot, list, verify.")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="folder, file://PATH or s3://BUCKET/PREFIX (default: $MLOPS_DATASET_STORE, else .mlops/datasets)",
        callback=absolute_option,
    ),
]


@app.command("snapshot")
def snapshot(
    dataset: Annotated[str, typer.Argument(help="dataset name, e.g. digits or surface-defects")],
    store: StoreOption = None,
    version: Annotated[str | None, typer.Option(help="version name (default: the next vN)")] = None,
    seed: Annotated[int, typer.Option(help="seed of generated datasets")] = 0,
) -> None:
    """Write an immutable version of DATASET (files + sha256 manifest) and print its version."""
    from workloads.datasets.errors import DatasetError
    from workloads.datasets.versions import snapshot as snapshot_version

    try:
        published = snapshot_version(dataset, store, version=version, seed=seed)
    except DatasetError as error:
        fail(str(error))
    typer.echo(f"{published.dataset} {published.version} sha256={published.digest} at {published.uri}", err=True)
    typer.echo(published.version)


@app.command("list")
def list_versions(
    dataset: Annotated[str, typer.Argument(help="dataset name")],
    store: StoreOption = None,
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
    store: StoreOption = None,
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
