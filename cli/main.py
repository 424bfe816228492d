"""Entry point of the `mlops` console script.

Each concern registers its own sub-commands from its own module; this file only assembles them,
so adding a command never means editing a long file shared by everyone.
"""

from __future__ import annotations

import typer

from cli import (
    data_commands,
    drift_commands,
    kfp_commands,
    label_commands,
    local_commands,
    model_commands,
    observability_commands,
    pipeline_commands,
    plan_commands,
    preflight,
    quality_commands,
    registry_commands,
    serve_commands,
)

app = typer.Typer(
    name="mlops",
    help="MLOps platform: offline infra plans, the model registry, and the local loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def resolve_caller_paths() -> None:
    """Relative store paths are the caller's, for this command and every process it starts."""
    import os

    from cli.caller_paths import resolve_store_variables

    resolve_store_variables(os.environ)


app.add_typer(plan_commands.app, name="plan")
app.add_typer(local_commands.app, name="local")
app.add_typer(data_commands.app, name="data")
app.add_typer(pipeline_commands.app, name="pipeline")
app.add_typer(drift_commands.app, name="drift")
app.add_typer(quality_commands.app, name="quality")
app.add_typer(model_commands.app, name="model")
app.add_typer(label_commands.app, name="labels")
app.add_typer(kfp_commands.app, name="kfp")
app.add_typer(observability_commands.app, name="observability")
# Registry commands sit at the top level: `mlops models`, `mlops promote`, `mlops rollback`.
app.add_typer(registry_commands.app)
app.add_typer(serve_commands.app)  # `mlops serve MODEL`
app.add_typer(preflight.app)  # `mlops preflight STACK`: before a first `pulumi up`


if __name__ == "__main__":
    app()
