"""`mlops drift run MODEL [--date]`: the drift job (`python -m monitoring.job`), from the console script.

Same code, same environment variables (`mlops drift run --help` lists them), same exit status.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.options import ModelArgument

app = typer.Typer(no_args_is_help=True, help="Drift monitoring (Evidently): the daily job of a model.")


@app.command("run")
def run(
    model: ModelArgument,
    date: Annotated[
        str | None, typer.Option("--date", help="day of the window, YYYY-MM-DD (default: yesterday, UTC)")
    ] = None,
) -> None:
    """Compare MODEL's prediction log of a day with the reference of the version that served it; write the
    report and summary, alert on drift (with a cooldown), optionally trigger retraining. Environment:
    see `python -m monitoring.job --help`."""
    from monitoring.job import main

    code = main(["--model", model, *(["--date", date] if date else [])])
    if code:
        raise typer.Exit(code)
