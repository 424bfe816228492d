"""Stopping a local server and every worker it started, the same way for each launcher."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen, timeout: float) -> int:
    """SIGTERM the process group (graceful shutdown), SIGKILL it after `timeout` seconds; return the exit code.

    The launchers start servers with `start_new_session=True`, so the group holds the server and its
    workers (uvicorn / BentoML runners) and nothing else.
    """
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass
    return int(process.returncode or 0)
