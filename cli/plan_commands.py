"""`mlops plan STACK`: the offline plan of a stack, without cloud credentials."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from cli.errors import fail
from cli.manifests import write_manifests
from cli.plan_diff import PlanDiffError, diff_against_ref, format_diff
from infra.config import ConfigError
from infra.offline_plan import PROJECT_ROOT, StackNotFound, render_stack, summary, to_json


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
        fail(str(error))
    document = to_json(plan)
    if out is None:
        typer.echo(document, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(document)
    elapsed = time.perf_counter() - started
    typer.echo(f"{summary(plan)}\nrendered in {elapsed:.1f} s" + (f" -> {out}" if out else ""), err=True)


@app.command("diff")
def diff(
    stack: Annotated[str, typer.Argument(help="Stack name: a stacks/Pulumi.<stack>.yaml file.")],
    base: Annotated[str, typer.Option("--base", help="Git ref to compare with, e.g. origin/main.")],
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when the plan changed (like `git diff --exit-code`).")
    ] = False,
    repo: Annotated[
        Path, typer.Option("--repo", help="The project checkout to diff (default: this one).")
    ] = PROJECT_ROOT,
) -> None:
    """Print the resources STACK's offline plan adds, removes and changes between --base and the working tree.

    Changed resources list each changed property (dotted path: old -> new); secrets stay masked.
    No cloud credentials needed. Exit 0 without changes, 1 with changes under --exit-code,
    2 for an unknown ref or stack or a plan that does not render.
    """
    try:
        result = diff_against_ref(stack, base, project_root=repo.resolve())
    except PlanDiffError as error:
        fail(str(error))
    typer.echo(format_diff(result), nl=False)
    if exit_code and result.has_changes:
        raise typer.Exit(1)


@app.command("render")
def render(
    stack: Annotated[str, typer.Argument(help="Stack name: a stacks/Pulumi.<stack>.yaml file.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the YAML manifests (stale *.yaml removed).")],
) -> None:
    """Write every Kubernetes object STACK's offline plan declares as one YAML manifest per object.

    Helm releases and providers are not objects and are skipped. Exit code 2 on a config error.
    """
    try:
        plan = render_stack(stack)
    except (StackNotFound, ConfigError) as error:
        fail(str(error))
    written = write_manifests(plan, out)
    typer.echo(f"stack {stack}: {len(written)} Kubernetes manifests -> {out}", err=True)
