"""`mlops quality run MODEL [--day]`: the quality job (`python -m monitoring.quality_job`), from the console script.

Same code, same environment variables (`python -m monitoring.quality_job --help` lists them), same exit status.
"""

from __future__ import annotations

import typer

from cli.options import DayOption, ModelArgument

app = typer.Typer(no_args_is_help=True, help="Measured accuracy from ground truth: the daily quality job of a model.")


@app.command("run")
def run(
    model: ModelArgument,
    day: DayOption = None,
) -> None:
    """Join MODEL's labels with its predictions of the lookback window; report accuracy (with its interval)
    and macro-F1 per day and model version against validation accuracy in quality.json; alert when degraded
    (with the drift job's cooldown). Environment: see `python -m monitoring.quality_job --help`."""
    from monitoring.quality_job import main

    code = main([model, *(["--day", day] if day else [])])
    if code:
        raise typer.Exit(code)
