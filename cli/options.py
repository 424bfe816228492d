"""The arguments and options several `mlops` commands take, declared once: same flag, help and callback.

A command writes `model: ModelArgument` or `store: DatasetStoreOption = None`; its default stays in
its signature (typer reads it there). Options that only one command has stay with that command.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.caller_paths import absolute_option

ModelArgument = Annotated[str, typer.Argument(help="catalogue model name, e.g. digits")]

OnlyModelOption = Annotated[
    str | None, typer.Option("--model", help="only this catalogue model (default: every model)")
]

DayOption = Annotated[
    str | None,
    typer.Option("--day", help="last prediction day of the window, YYYY-MM-DD (default: yesterday, UTC)"),
]

# Stores: relative paths are the caller's directory (cli/caller_paths.py), resolved before any work.
DatasetStoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="folder, file://PATH or s3://BUCKET/PREFIX (default: $MLOPS_DATASET_STORE, else .mlops/datasets)",
        callback=absolute_option,
    ),
]

PredictionsStoreOption = Annotated[
    str | None,
    typer.Option(
        help="prediction log: folder or s3://BUCKET/PREFIX "
        "(default: $MLOPS_PREDICTIONS_STORE, else .mlops/predictions)",
        callback=absolute_option,
    ),
]

LabelsStoreOption = Annotated[
    str | None,
    typer.Option(
        help="labels store: folder or s3://BUCKET/PREFIX (default: $MLOPS_LABELS_STORE, else .mlops/labels)",
        callback=absolute_option,
    ),
]
