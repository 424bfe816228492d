"""`mlops plan STACK`: the offline plan of a stack, without cloud credentials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from infra.config import ConfigError
from infra.offline_plan import StackNotFound, render_stack, summary, to_json


class _ShowByDefault(TyperGroup):
    """`mlops plan dev` means `mlops plan show dev`; named sub-commands still work beside it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's vendored click Context
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_ShowByDefault, no_args_is_help=True, help="Offline plans of the Pulumi stacks.")


@app.command("show")
def show(
    stack: Annotated[str, typer.Argument(help="Stack name: a stacks/Pulumi.<stack>.yaml file.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the plan JSON here instead of stdout.")] = None,
) -> None:
    """Run the Pulumi program under mocks for STACK and print every resource it declares, as JSON.

    A per-type summary goes to stderr. Secrets are masked. Exit code 2 on a config error.
    """
    started = time.perf_counter()
    try:
        plan = render_stack(stack)
    except (StackNotFound, ConfigError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    document = to_json(plan)
    if out is None:
        typer.echo(document, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document)
    elapsed = time.perf_counter() - started
    typer.echo(f"{summary(plan)}\nrendered in {elapsed:.1f} s" + (f" -> {out}" if out else ""), err=True)
