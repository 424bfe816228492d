"""The command line every daily monitoring job shares: its parser and how its errors exit.

Exit status: 2 for a mistake in the job's configuration or arguments (one line naming it, before
anything is read), 1 when the job could not do its work (the tracking server failing it included)
or did it but an action failed (an alert not delivered), 0 otherwise, whatever the verdict.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from monitoring.settings import SettingsError

CONFIG_ERROR_EXIT = 2
JOB_ERROR_EXIT = 1


class JobOutcome(Protocol):
    """What a job run returns: what to print and how to exit."""

    @property
    def errors(self) -> Sequence[str]: ...

    @property
    def exit_code(self) -> int: ...


Prepared = TypeVar("Prepared")
Outcome = TypeVar("Outcome", bound=JobOutcome)


def job_parser(prog: str, description: str, variables_help: str) -> argparse.ArgumentParser:
    """A parser whose --help ends with the job's environment variables."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="environment variables:\n" + variables_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _fail(error: Exception | str, code: int) -> int:
    print(f"error: {error}", file=sys.stderr)
    return code


def run_job_command(
    prepare: Callable[[], Prepared],
    execute: Callable[[Prepared], Outcome],
    describe: Callable[[Outcome], str],
    job_error: type[Exception],
) -> int:
    """`prepare` reads the settings and checks the arguments (SettingsError / job_error: exit 2);
    `execute` runs the job (job_error or a tracking-server error: exit 1); the outcome is printed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        prepared = prepare()
    except (SettingsError, job_error) as error:
        return _fail(error, CONFIG_ERROR_EXIT)
    from mlflow.exceptions import MlflowException

    try:
        outcome = execute(prepared)
    except job_error as error:
        return _fail(error, JOB_ERROR_EXIT)
    except MlflowException as error:
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        return _fail(f"the tracking server at {uri} refused or failed a request: {error.message}", JOB_ERROR_EXIT)
    print(describe(outcome))
    for message in outcome.errors:
        print(f"error: {message}", file=sys.stderr)
    return outcome.exit_code
