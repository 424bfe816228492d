"""Run the serving service on this machine: `bentoml serve` as a child process, and wait until ready.

Used by `mlops serve`, the local loop and the tests; the process is exactly what the container runs
(`bentoml serve workloads.serving.service:ImageClassifier`), configured by the same variables.

    from workloads.serving.local import start_local_service
    from workloads.settings import TrackingClientVariables

    with start_local_service("digits", environment={TrackingClientVariables.URI: url}) as service:
        service.wait_until_ready()
        requests.post(f"{service.url}/classify_array", json={"image": pixels})
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workloads.local_process import REPOSITORY_ROOT, LocalProcess, free_loopback_port, spawn, with_repository_on_path
from workloads.serving.settings import ServingVariables

SERVICE_TARGET = "workloads.serving.service:ImageClassifier"


class LocalServiceError(RuntimeError):
    """The service exited or did not become ready; the message carries the end of its log."""


def bentoml_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The `bentoml serve` command line (the venv's bentoml, beside this interpreter)."""
    beside_python = Path(sys.executable).with_name("bentoml")
    executable = str(beside_python) if beside_python.exists() else "bentoml"
    return [
        executable,
        "serve",
        SERVICE_TARGET,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(REPOSITORY_ROOT),
    ]


def service_environment(model: str, environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment plus MLOPS_MODEL and the repository on PYTHONPATH."""
    merged = with_repository_on_path({**os.environ, **(environment or {}), ServingVariables.MODEL: model})
    merged.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return merged


@dataclass
class LocalModelService(LocalProcess):
    """Handle on a `bentoml serve` process started by `start_local_service`."""

    model: str

    STOP_TIMEOUT_SECONDS = 60.0
    """SIGTERM lets in-flight requests finish and flushes the prediction log: give it time."""

    def _status(self, path: str, timeout: float = 2.0) -> int | None:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def ready(self) -> bool:
        return self._status("/readyz") == 200

    def alive(self) -> bool:
        return self._status("/livez") == 200

    def wait_until_alive(self, timeout: float = 180.0) -> None:
        self.wait_until(self.alive, timeout, label="service", goal="answer /livez", error=LocalServiceError)

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        self.wait_until(self.ready, timeout, label="service", goal="become ready (/readyz)", error=LocalServiceError)


def start_local_service(
    model: str,
    *,
    port: int | None = None,
    environment: Mapping[str, str] | None = None,
    log_path: Path | None = None,
) -> LocalModelService:
    """Start `bentoml serve` for `model` in its own process group; returns at once (see wait_until_*)."""
    chosen_port = port or free_loopback_port()
    log = log_path or Path(os.environ.get("TMPDIR", "/tmp")) / f"mlops-serve-{model}-{chosen_port}.log"
    process, handle = spawn(
        bentoml_command(chosen_port), log, env=service_environment(model, environment), cwd=REPOSITORY_ROOT
    )
    return LocalModelService(f"http://127.0.0.1:{chosen_port}", process, log, model, log_handle=handle)
