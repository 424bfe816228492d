"""`mlops serve MODEL`: run a catalogue model's BentoML service on this machine.

The same process the cluster runs (`bentoml serve workloads.serving.service:ImageClassifier`), here
against the tracking server named by MLFLOW_TRACKING_URI (what `mlops local tracking` prints). The
command replaces itself with `bentoml serve`, so Ctrl-C and SIGTERM reach BentoML directly and the
prediction log is flushed on the way out. Mistakes (unknown model, no tracking server configured)
end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cli.caller_paths import absolute
from cli.errors import fail
from cli.options import ModelArgument, PredictionsStoreOption
from workloads.settings import TrackingClientVariables

app = typer.Typer(no_args_is_help=True)


def _epilog() -> str:
    from workloads.serving.settings import describe_variables

    return "Environment variables (set them, or use the options above):\n\n" + describe_variables().replace(
        "\n", "\n\n"
    )


@app.command("serve", epilog=_epilog())
def serve(
    model: ModelArgument,
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    alias: Annotated[str | None, typer.Option(help="registry alias to serve (MLOPS_MODEL_ALIAS)")] = None,
    predictions_store: PredictionsStoreOption = None,
) -> None:
    """Serve MODEL's `production` version (or --alias) over HTTP; follows the alias as it moves."""
    from workloads.serving.local import bentoml_command, service_environment
    from workloads.serving.settings import (
        DEFAULT_LABELS_STORE,
        DEFAULT_PREDICTIONS_STORE,
        ServingVariables,
        SettingsError,
        resolve_entry,
    )

    try:
        resolve_entry(model, os.environ.get(ServingVariables.EXTRA_ENTRY, "").strip())
    except SettingsError as error:
        fail(str(error).removeprefix(f"{ServingVariables.MODEL}: "))
    if not os.environ.get(TrackingClientVariables.URI):
        fail(
            f"{TrackingClientVariables.URI} is not set; point it at the tracking server "
            "(`mlops local tracking` prints the URL and credentials)"
        )
    # bentoml serve runs in the repository (--working-dir): hand it absolute stores, the defaults too.
    overrides = {
        ServingVariables.PREDICTIONS_STORE: absolute(
            predictions_store or os.environ.get(ServingVariables.PREDICTIONS_STORE, "") or DEFAULT_PREDICTIONS_STORE
        ),
        ServingVariables.LABELS_STORE: absolute(
            os.environ.get(ServingVariables.LABELS_STORE, "") or DEFAULT_LABELS_STORE
        ),
    }
    if alias:
        overrides[ServingVariables.MODEL_ALIAS] = alias
    environment = service_environment(model, overrides)
    command = bentoml_command(port, host)
    typer.echo(f"serving {model} on http://{host}:{port} (readiness: /readyz, metrics: /metrics)", err=True)
    os.execvpe(command[0], command, environment)
