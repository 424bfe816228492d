"""`mlops model new NAME --from TEMPLATE`: scaffold a catalogue entry (see cli/model_scaffold.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.errors import fail

app = typer.Typer(no_args_is_help=True, help="Models: add one to the catalogue.")


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="new model name: a DNS label, e.g. digits-night")],
    template: Annotated[str, typer.Option("--from", help="catalogue model to copy, e.g. digits")],
    stacks: Annotated[
        list[str] | None, typer.Option("--stack", help="enable it in this stack (repeat; default: dev)")
    ] = None,
) -> None:
    """Copy TEMPLATE's catalogue entry as NAME, compile its pipeline and enable it in the stacks: a
    complete model (training schedule, service, drift job) that `mlops plan` and `mlops local up` show."""
    from cli.model_scaffold import ScaffoldError, scaffold

    try:
        result = scaffold(name, template, stacks or ["dev"])
    except ScaffoldError as error:
        fail(str(error))
    typer.echo(f"added {result.name} (a copy of {template}); changed:")
    for path in result.changed:
        typer.echo(f"  {path}")
    typer.echo(
        f"next: edit its entry (dataset, model_factory, gate) in workloads/catalogue.py, then `mlops pipeline "
        f"compile --model {name}`; `mlops plan dev` shows its resources, `mlops local up --model {name}` its loop"
    )
