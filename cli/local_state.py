"""What `mlops local up --keep` leaves running, so that `mlops local down` (or the next `up`) can stop it.

The record is one JSON file, `<state>/local/platform.json`: for each server its name, URL, process
group id (every launcher starts its server with `start_new_session=True`, so the group holds the
server and its workers and nothing else) and a marker that must appear in the process's command
line — a process id reused by an unrelated program after a reboot is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_FILE = Path("local") / "platform.json"


@dataclass(frozen=True)
class KeptServer:
    name: str
    """What it is, e.g. `tracking server` or `digits service`."""
    url: str
    process_group: int
    marker: str
    """A string of its command line (`mlflow`: the tracking entrypoint execs `mlflow server`; `bentoml`)."""


def record_path(state_directory: Path) -> Path:
    return state_directory / RECORD_FILE


def write_record(state_directory: Path, servers: list[KeptServer]) -> Path:
    path = record_path(state_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(server) for server in servers], indent=2) + "\n", encoding="utf-8")
    return path


def read_record(state_directory: Path) -> list[KeptServer]:
    path = record_path(state_directory)
    if not path.exists():
        return []
    try:
        return [KeptServer(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a platform record ({error}); stop the servers by hand and delete it") from None


def _command_line(pid: int) -> str | None:
    """The process's command line, or None when no such process runs (a zombie no longer runs)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        if state in ("Z", "X"):
            return None
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return None
    except OSError:  # no /proc (not Linux): fall back to "it exists"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return ""


def is_running(server: KeptServer) -> bool:
    command = _command_line(server.process_group)
    return command is not None and (command == "" or server.marker in command)


def _signal_group(group: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, number)


def stop_kept(state_directory: Path, timeout: float = 60.0) -> list[KeptServer]:
    """SIGTERM every recorded server that still runs (its prediction log flushes), SIGKILL what is left
    after `timeout`; delete the record. Returns the servers that were running."""
    running = [server for server in read_record(state_directory) if is_running(server)]
    for server in running:
        _signal_group(server.process_group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(is_running(server) for server in running) and time.monotonic() < deadline:
        time.sleep(0.25)
    for server in running:
        if is_running(server):
            _signal_group(server.process_group, signal.SIGKILL)
    record_path(state_directory).unlink(missing_ok=True)
    return running
