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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from workloads.process_group import stop_process_group
from workloads.serving.settings import ServingVariables
from workloads.tracking.local import free_loopback_port

SERVICE_TARGET = "workloads.serving.service:ImageClassifier"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


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
    merged = dict(os.environ)
    merged.update(environment or {})
    merged[ServingVariables.MODEL] = model
    merged["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPOSITORY_ROOT), merged.get("PYTHONPATH", "")) if part
    )
    merged.setdefault("BENTOML_DO_NOT_TRACK", "True")
    return merged


@dataclass
class LocalModelService:
    """Handle on a `bentoml serve` process started by `start_local_service`."""

    model: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log_handle: object = field(default=None, repr=False)

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
        self._wait(self.alive, timeout, "answer /livez")

    def wait_until_ready(self, timeout: float = 180.0) -> None:
        self._wait(self.ready, timeout, "become ready (/readyz)")

    def _wait(self, predicate: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LocalServiceError(f"service exited with status {self.process.returncode}:\n{self.log_tail()}")
            if predicate():  # type: ignore[operator]
                return
            time.sleep(0.25)
        raise LocalServiceError(f"service did not {what} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: in-flight requests finish, the prediction log is flushed); SIGKILL after `timeout`."""
        code = stop_process_group(self.process, timeout)
        close = getattr(self._log_handle, "close", None)
        if close is not None:
            close()
        return code

    def __enter__(self) -> LocalModelService:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.terminate()


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
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    process = subprocess.Popen(
        bentoml_command(chosen_port),
        env=service_environment(model, environment),
        cwd=str(REPOSITORY_ROOT),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return LocalModelService(
        model=model, url=f"http://127.0.0.1:{chosen_port}", process=process, log_path=log, _log_handle=handle
    )
