"""Entry point of the `mlops` console script.

Each concern registers its own sub-commands from its own module; this file only assembles them,
so adding a command never means editing a long file shared by everyone.
"""

from __future__ import annotations

import typer

from cli import local_commands, plan_commands, registry_commands

app = typer.Typer(
    name="mlops",
    help="MLOps platform: offline infra plans, the model registry, and the local loop.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(plan_commands.app, name="plan")
app.add_typer(local_commands.app, name="local")
# Registry commands sit at the top level: `mlops models`, `mlops promote`, `mlops rollback`.
app.add_typer(registry_commands.app)


if __name__ == "__main__":
    app()
