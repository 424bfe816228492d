"""How a command ends on a mistake: a line on stderr and an exit status, never a traceback.

Every command in cli/ fails through `fail`, so the lines and the statuses mean the same everywhere.
"""

from __future__ import annotations

from typing import NoReturn

import typer

USAGE_ERROR_EXIT_CODE = 2
"""The caller can fix the call: an unknown model, a bad option, a variable that is not set."""
RUN_FAILED_EXIT_CODE = 1
"""What was asked ran and failed (a pipeline run, a server that would not start)."""
INTERRUPTED_EXIT_CODE = 130
"""Ctrl-C, as a shell reports it (128 + SIGINT)."""


def fail(*lines: str, code: int = USAGE_ERROR_EXIT_CODE, label: str = "error") -> NoReturn:
    """Print each line as `<label>: <line>` on stderr, then exit with `code`."""
    for line in lines:
        typer.echo(f"{label}: {line}", err=True)
    raise typer.Exit(code)
