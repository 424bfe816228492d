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
from dataclasses import dataclass
from datetime import date
from typing import Generic, Protocol, TypeVar

from monitoring.settings import SettingsError
from workloads.settings import HELP_WIDTH, WorkloadSettings

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
Settings = TypeVar("Settings", bound=WorkloadSettings)
MODEL_HELP = "catalogue / registered model name"


def job_parser(prog: str, description: str, settings: type[WorkloadSettings]) -> argparse.ArgumentParser:
    """A parser whose --help ends with the job's environment variables (those `settings` reads)."""
    return argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="environment variables:\n" + settings.variables_help(indent="  ", width=HELP_WIDTH),
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


@dataclass(frozen=True)
class ModelDayJob(Generic[Settings]):
    """A daily job of one model over the window ending on one day (the drift and the quality job)."""

    prog: str
    description: str
    settings: type[Settings]
    job_error: type[Exception]
    flags: ModelDayFlags

    def parser(self) -> argparse.ArgumentParser:
        parser = job_parser(self.prog, self.description, self.settings)
        if self.flags.model.startswith("-"):
            parser.add_argument(self.flags.model, dest="model", required=True, help=MODEL_HELP)
        else:
            parser.add_argument(self.flags.model, help=MODEL_HELP)
        day_flag = self.flags.day
        parser.add_argument(day_flag, dest="day", metavar=day_flag.lstrip("-").upper(), help=self.flags.day_help)
        return parser

    def main(
        self,
        argv: Sequence[str] | None,
        run: Callable[[str, str | None, Settings], Outcome],
        describe: Callable[[Outcome], str],
    ) -> int:
        """Parse `argv`, read the settings and check the day before anything else, then `run` the job
        with the model, the day as given (None: yesterday) and the settings; exit as above."""
        arguments = self.parser().parse_args(argv)

        def prepare() -> Settings:
            settings = self.settings.from_environment()
            if arguments.day:
                self._check_day(arguments.day)
            return settings

        return run_job_command(
            prepare, lambda settings: run(arguments.model, arguments.day, settings), describe, self.job_error
        )

    def _check_day(self, text: str) -> None:
        try:
            date.fromisoformat(text)
        except ValueError:
            raise self.job_error(f"{self.flags.day} {text!r}: expected YYYY-MM-DD") from None


@dataclass(frozen=True)
class ModelDayFlags:
    """How a daily job names its model and its day on the command line: the CronJobs' contract (infra/)."""

    model: str
    """`--model`, or `model` for a positional argument."""
    day: str
    day_help: str
