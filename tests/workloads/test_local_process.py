"""The handle every local launcher returns, on real child processes: it reports a server that exits or
never answers with the end of its log, and stops the whole process group."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from workloads.local_process import REPOSITORY_ROOT, LocalProcess, spawn, with_repository_on_path


class StartError(RuntimeError):
    pass


def _started(tmp_path: Path, code: str) -> LocalProcess:
    log_path = tmp_path / "logs" / "server.log"
    process, log = spawn([sys.executable, "-c", code], log_path)
    return LocalProcess("http://127.0.0.1:1", process, log_path, log_handle=log)


def test_a_server_that_exits_is_reported_with_its_status_and_log(tmp_path: Path) -> None:
    server = _started(tmp_path, "import sys; print('cannot bind', flush=True); sys.exit(3)")
    with server, pytest.raises(StartError, match=r"(?s)^demo exited with status 3:\ncannot bind$"):
        server.wait_until(lambda: False, 30, label="demo", goal="answer", error=StartError)
    assert server.log_handle is None  # `with` stopped it: the log is closed


def test_a_server_that_never_answers_times_out_and_stop_ends_its_group(tmp_path: Path) -> None:
    server = _started(tmp_path, "import time; print('starting', flush=True); time.sleep(600)")
    try:
        with pytest.raises(StartError, match=r"(?s)^demo did not answer within 1 s:\nstarting$"):
            server.wait_until(lambda: False, 1, label="demo", goal="answer", error=StartError)
    finally:
        code = server.stop(timeout=10)
    assert code == -signal.SIGTERM
    assert server.log_handle is None  # the log is closed with the process
    with pytest.raises(ProcessLookupError):
        os.killpg(server.process.pid, 0)  # nothing of its group is left


def test_waiting_returns_as_soon_as_the_server_answers(tmp_path: Path) -> None:
    calls: list[int] = []

    def answers() -> bool:
        calls.append(1)
        return len(calls) == 2

    with _started(tmp_path, "import time; time.sleep(600)") as server:
        server.wait_until(answers, 30, label="demo", goal="answer", error=StartError)
    assert len(calls) == 2 and server.process.returncode == -signal.SIGTERM


def test_the_child_imports_this_checkout_first() -> None:
    environment = with_repository_on_path({"PYTHONPATH": "/elsewhere", "KEPT": "1"})
    assert environment["PYTHONPATH"] == os.pathsep.join((str(REPOSITORY_ROOT), "/elsewhere"))
    assert environment["KEPT"] == "1"
    assert with_repository_on_path({})["PYTHONPATH"] == str(REPOSITORY_ROOT)
