"""A server started on this machine as a child process: launched, awaited, logged and stopped one way.

The launchers of the local loop and the tests (`workloads/tracking/local.py`, `workloads/serving/local.py`,
`observability/local_servers.py`) start their server in a process group of its own, with stdout and
stderr in a log file, and hand back a `LocalProcess`: it waits until the server answers (with the end
of the log when it exits or times out), stops the whole group, and works as a context manager.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar, Self

from workloads.process_group import stop_process_group

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.25


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago (good enough for a local server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_repository_on_path(environment: Mapping[str, str]) -> dict[str, str]:
    """`environment` with this repository first on PYTHONPATH: the child imports this checkout's
    packages wherever the caller's working directory is."""
    merged = dict(environment)
    merged["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPOSITORY_ROOT), merged.get("PYTHONPATH", "")) if part
    )
    return merged


class StopsOnExit:
    """`with handle:` stops what the handle started, however the block ends."""

    def stop(self) -> object:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class LocalProcess(StopsOnExit):
    """Handle on a server process that leads its own process group (its workers included)."""

    url: str
    """Base URL, `http://127.0.0.1:PORT`."""
    process: subprocess.Popen[bytes]
    log_path: Path
    """File receiving the server's stdout and stderr."""
    log_handle: IO[bytes] | None = field(default=None, repr=False, kw_only=True)

    STOP_TIMEOUT_SECONDS: ClassVar[float] = 15.0
    """How long `stop` waits after SIGTERM before SIGKILL."""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """Last lines of the server log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(no log)"

    def wait_until(
        self, answers: Callable[[], bool], timeout: float, *, label: str, goal: str, error: type[Exception]
    ) -> None:
        """Poll `answers` until it is true; raise `error` with the log's end if the process exits or
        `timeout` seconds pass (the message reads "<label> did not <goal> within N s")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise error(f"{label} exited with status {self.process.returncode}:\n{self.log_tail()}")
            if answers():
                return
            time.sleep(POLL_SECONDS)
        raise error(f"{label} did not {goal} within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM the group (graceful: in-flight work finishes), SIGKILL after `timeout`; the exit code."""
        code = stop_process_group(self.process, self.STOP_TIMEOUT_SECONDS if timeout is None else timeout)
        if self.log_handle is not None:
            self.log_handle.close()
            self.log_handle = None
        return code


def spawn(
    command: Sequence[str], log_path: Path, *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start `command` in a new session (so `stop` reaches its workers), output appended to `log_path`;
    returns the process and the open log, which the handle closes when it stops."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    process = subprocess.Popen(
        list(command),
        env=None if env is None else dict(env),
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, log
