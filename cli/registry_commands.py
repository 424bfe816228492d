"""`mlops models`, `mlops promote`, `mlops rollback`: the registry, seen as aliases that move.

They talk to the tracking server named by MLFLOW_TRACKING_URI with MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD (what `mlops local tracking` prints). Mistakes the user can make (unknown
model or version, a version that failed its quality gate, no server configured) end with one line on
stderr and exit status 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from cli.errors import fail
from workloads.settings import TrackingClientVariables

# The registry columns show at most this many metrics per version, to keep one line per version.
SHOWN_METRICS = 3

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True)


def _require_tracking_uri() -> None:
    # Without it MLflow silently falls back to a new ./mlflow.db, which would show an empty registry.
    if not os.environ.get(TrackingClientVariables.URI):
        fail(
            f"{TrackingClientVariables.URI} is not set; point it at the tracking server "
            "(`mlops local tracking` prints the URL and credentials)"
        )


def _run_registry_call(call: Callable[[], T]) -> T:
    """Run a registry function, turning expected failures into one line and exit status 2."""
    from mlflow.exceptions import MlflowException

    from workloads.tracking.registry import RegistryError

    _require_tracking_uri()
    try:
        return call()
    except RegistryError as error:
        fail(str(error))
    except MlflowException as error:
        first_line = str(error.message).strip().splitlines()[0] if error.message else error.error_code
        fail(f"tracking server {os.environ[TrackingClientVariables.URI]}: {first_line}")


@app.command("models")
def models() -> None:
    """List registered models: versions, aliases, quality gate and key metrics."""
    from workloads.tracking.registry import list_models

    summaries = _run_registry_call(list_models)
    if not summaries:
        typer.echo("no registered models")
        return
    rows = [("MODEL", "VERSION", "ALIASES", "GATE", "METRICS")]
    for summary in summaries:
        for version in summary.versions:
            metrics = ", ".join(
                f"{name}={value:.4g}" for name, value in sorted(version.metrics.items())[:SHOWN_METRICS]
            )
            rows.append(
                (
                    summary.name,
                    f"v{version.version}",
                    ",".join(version.aliases) or "-",
                    version.quality_gate,
                    metrics or "-",
                )
            )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@app.command("promote")
def promote(
    model: Annotated[str, typer.Argument(help="registered model name (the catalogue name)")],
    version: Annotated[str, typer.Argument(help="version number, e.g. 3")],
    to: Annotated[str, typer.Option("--to", help="alias to move: staging or production")] = "production",
    force: Annotated[bool, typer.Option("--force", help="promote even if the quality gate did not pass")] = False,
) -> None:
    """Point an alias at a version (refuses versions that failed the quality gate unless --force)."""
    from workloads.tracking import registry

    move = _run_registry_call(lambda: registry.promote(model, version.removeprefix("v"), to=to, force=force))
    typer.echo(move.describe())


@app.command("rollback")
def rollback(model: Annotated[str, typer.Argument(help="registered model name")]) -> None:
    """Move `production` back to the version it pointed at before the last promotion."""
    from workloads.tracking import registry

    move = _run_registry_call(lambda: registry.rollback(model))
    typer.echo(move.describe())
