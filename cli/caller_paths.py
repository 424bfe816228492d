"""Relative paths mean the caller's directory: every command resolves them here, once, before any work.

Without this a relative store meant whichever directory the process that opened it ran in: `mlops
serve` execs `bentoml serve --working-dir <repository>`, which changes directory, so a relative
MLOPS_PREDICTIONS_STORE (or its default `.mlops/predictions`) was written under the repository while
`mlops drift run`, run from anywhere else, read it under the caller's directory and found "no traffic".
Now the `mlops` callback makes every store variable set in the environment absolute, and the commands
pass their path options (and the defaults they hand on to a child process) through `absolute`.
URIs other than `file://` (s3://...) are not paths and are left as they are.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path


def store_variables() -> tuple[str, ...]:
    """Variables holding a local folder (or a URI) that commands and the processes they start open.

    Imported here, not at module import: every `mlops` command (and `--help`) loads this module.
    """
    from monitoring.settings import DriftVariables
    from workloads.datasets.stores import STORE_ENVIRONMENT_VARIABLE
    from workloads.serving.settings import ServingVariables

    return (
        ServingVariables.PREDICTIONS_STORE,
        ServingVariables.LABELS_STORE,
        DriftVariables.REPORTS_STORE,
        STORE_ENVIRONMENT_VARIABLE,
    )


FILE_SCHEME = "file://"


def absolute(value: str, directory: Path | None = None) -> str:
    """`value` against `directory` (default: the current one) when it is a relative path or file:// path."""
    text = value.strip()
    if text.startswith(FILE_SCHEME):
        return FILE_SCHEME + absolute(text.removeprefix(FILE_SCHEME), directory)
    if "://" in text or not text:
        return text
    path = Path(text).expanduser()
    return os.path.normpath(path if path.is_absolute() else (directory or Path.cwd()) / path)


def resolve_store_variables(environ: MutableMapping[str, str], directory: Path | None = None) -> None:
    """Make each store variable set in `environ` absolute (blank ones stay unset: their defaults apply)."""
    for name in store_variables():
        value = environ.get(name, "")
        if value.strip():
            environ[name] = absolute(value, directory)


def absolute_option(value: str | None) -> str | None:
    """A Typer option callback: a store option given as a relative path is the caller's."""
    return None if value is None else absolute(value)
