"""Where promtool and the Prometheus servers are, and what a test does without them: skip locally,
fail where they are required.

`make unit` sets MLOPS_REQUIRE_PROMTOOL=1 and MLOPS_REQUIRE_PROMETHEUS=1 (as it does
MLOPS_REQUIRE_CHECKOV), and `.ci/services` installs Debian's `prometheus` (promtool and the server),
`prometheus-alertmanager` and `prometheus-pushgateway` packages; a plain `pytest` on a machine
without them skips these tests, naming the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from observability.local_servers import ALERTMANAGER, PROMETHEUS, PUSHGATEWAY, find_binary

REQUIRE_SERVERS = "MLOPS_REQUIRE_PROMETHEUS"
"""Set by `make unit`: a missing prometheus, alertmanager or pushgateway fails the test."""


def _required(found: str | None, what: str, package: str, require_variable: str) -> str:
    if found:
        return found
    message = f"{what} not found: `apt-get install {package}` provides it (.ci/services installs it as root)"
    if os.environ.get(require_variable) == "1":
        pytest.fail(f"{message}; {require_variable}=1 (make unit) requires it")
    pytest.skip(f"{message}; `make test` requires it")


def promtool() -> str:
    """The promtool executable (MLOPS_PROMTOOL, else the PATH's); skips or fails the test without one."""
    configured = os.environ.get("MLOPS_PROMTOOL", "")
    found = configured if configured and Path(configured).exists() else shutil.which("promtool")
    return _required(found, "promtool", "prometheus", "MLOPS_REQUIRE_PROMTOOL")


def server_binary(names: Sequence[str], package: str) -> str:
    """A server's executable on PATH (`observability.local_servers` names); skips or fails without one."""
    return _required(find_binary(names), names[0], package, REQUIRE_SERVERS)


def prometheus_binary() -> str:
    return server_binary(PROMETHEUS, "prometheus")


def alertmanager_binary() -> str:
    return server_binary(ALERTMANAGER, "prometheus-alertmanager")


def pushgateway_binary() -> str:
    return server_binary(PUSHGATEWAY, "prometheus-pushgateway")


def run_promtool(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
