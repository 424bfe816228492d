"""Run a training pipeline on this machine with `kfp.local` (no cluster, no containers, no network).

Each step runs as a subprocess of the current Python environment
(`SubprocessRunner(use_venv=False)`), exactly the component code the cluster runs, with this
repository put on PYTHONPATH so the steps import `workloads` and `pipelines`. The steps read the
tracking server from the environment (MLFLOW_TRACKING_URI and credentials), which the
subprocesses inherit.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pipelines.contract import REPOSITORY_ROOT, pipeline_name
from workloads.settings import TrackingClientVariables

DEFAULT_PIPELINE_ROOT = Path(".mlops") / "pipelines"
NOT_REGISTERED_PREFIX = "NOT REGISTERED"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback: `package.module.SomeError: message`.
_EXCEPTION_LINE = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception)): (.+)$")


class LineTee(io.TextIOBase):
    """Passes text through to `target` and hands each complete line, colours removed, to `on_line`.

    kfp.local streams every step's output through `sys.stdout`; redirecting it to a LineTee lets a
    caller watch the lines (the failing step's exception here, step progress in the local loop).
    """

    def __init__(self, target: IO[str], on_line: Callable[[str], None]) -> None:
        self.target, self.on_line = target, on_line
        self._partial = ""

    def write(self, text: str) -> int:
        self.target.write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self.on_line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self.target.flush()


class _LastException:
    """Remembers the last `SomeError: message` line of a step's traceback."""

    def __init__(self) -> None:
        self.message: str | None = None

    def __call__(self, line: str) -> None:
        match = _EXCEPTION_LINE.match(line)
        if match:
            self.message = f"{match.group(1).rsplit('.', 1)[-1]}: {match.group(2)}"


class PipelineRunError(RuntimeError):
    """The local run failed; the message names the step and the error it raised (full log above)."""

    def __init__(self, message: str, step: str | None) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class LocalRunResult:
    model: str
    summary: str
    """The pipeline's output: what was registered (or why nothing was)."""
    pipeline_root: Path

    @property
    def registered(self) -> bool:
        return not self.summary.startswith(NOT_REGISTERED_PREFIX)

    @property
    def version(self) -> str | None:
        match = re.search(r"registered \S+ v(\d+)", self.summary)
        return match.group(1) if match and self.registered else None


@contextmanager
def _repository_on_pythonpath() -> Iterator[None]:
    previous = os.environ.get("PYTHONPATH")
    parts = [str(REPOSITORY_ROOT), *(previous.split(os.pathsep) if previous else [])]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(part for part in parts if part))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


def run_local(
    model: str,
    *,
    pipeline_root: Path | None = None,
    **arguments: Any,
) -> LocalRunResult:
    """Run `model`'s training pipeline locally; `arguments` are pipeline parameters
    (`epochs`, `quality_threshold`, `auto_promote`, `dataset_version`, `dataset_store`, ...).

    Raises PipelineRunError when a step fails (e.g. a corrupt dataset at fetch).
    """
    from kfp import local

    from pipelines.training_pipeline import pipeline_for

    pipeline = pipeline_for(model)
    unknown = sorted(set(arguments) - set(pipeline.component_spec.inputs or {}))
    if unknown:
        raise ValueError(f"unknown pipeline parameter(s) {', '.join(unknown)} for {pipeline_name(model)}")
    if not os.environ.get(TrackingClientVariables.URI):
        raise PipelineRunError(
            f"{TrackingClientVariables.URI} is not set: the train, evaluate and register steps need a tracking server",
            None,
        )
    root = (pipeline_root or DEFAULT_PIPELINE_ROOT).resolve()
    root.mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True)
    last_exception = _LastException()
    tee = LineTee(sys.stdout, last_exception)
    with _repository_on_pythonpath(), warnings.catch_warnings(), contextlib.redirect_stdout(tee):
        # GPU requests, tolerations and secrets are cluster settings: the local runner ignores them.
        warnings.filterwarnings("ignore", message=r".*have no effect in the current local runner.*")
        warnings.filterwarnings("ignore", message=r".*non-Python base image.*")
        try:
            task = pipeline(**arguments)
        except RuntimeError as error:
            text = _ANSI.sub("", str(error))
            match = re.search(r"Inner task failed: '([^']+)'", text)
            step = match.group(1) if match else None
            where = f" at step '{step}'" if step else ""
            cause = last_exception.message or text
            raise PipelineRunError(f"pipeline {pipeline_name(model)} failed{where}: {cause}", step) from None
    return LocalRunResult(model=model, summary=str(task.output), pipeline_root=root)
