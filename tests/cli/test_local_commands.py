"""`mlops local tracking` as a user runs it: prints the URL and the password once, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from workloads.local_process import free_loopback_port
from workloads.tracking.local import LocalTrackingServer

REPOSITORY = Path(__file__).resolve().parents[2]


def test_local_tracking_command_serves_with_a_generated_password(tmp_path: Path) -> None:
    port = free_loopback_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "local",
            "tracking",
            "--port",
            str(port),
            "--state-directory",
            ".mlops/tracking",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not any(line.startswith("export ") for line in lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        output = "\n".join(lines)
        assert f"MLflow tracking server: http://127.0.0.1:{port}" in output, output
        match = re.search(r"admin password \(shown once, kept in \.mlops/tracking/admin-password\): (\S+)", output)
        assert match, output
        password_file = tmp_path / ".mlops" / "tracking" / "admin-password"
        assert password_file.read_text().strip() == match.group(1)
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        assert (tmp_path / ".mlops" / "tracking" / "mlflow.db").exists()

        handle = LocalTrackingServer(
            url=f"http://127.0.0.1:{port}",
            username="admin",
            password=match.group(1),
            password_created=True,
            log_path=tmp_path / ".mlops" / "tracking" / "server.log",
            process=process,  # type: ignore[arg-type]  # only used for poll() here
        )
        assert handle.answers()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0
