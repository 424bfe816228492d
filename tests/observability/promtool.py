"""Where promtool is, and what a test does without it: skip locally, fail where it is required.

`make unit` sets MLOPS_REQUIRE_PROMTOOL=1 (as it does MLOPS_REQUIRE_CHECKOV), and `.ci/services`
installs Debian's `prometheus` package, which provides /usr/bin/promtool; a plain `pytest` on a
machine without it skips these tests, naming the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    """The promtool executable (MLOPS_PROMTOOL, else the PATH's); skips or fails the test without one."""
    configured = os.environ.get("MLOPS_PROMTOOL", "")
    found = configured if configured and Path(configured).exists() else shutil.which("promtool")
    if found:
        return found
    message = "promtool not found: `apt-get install prometheus` provides it (.ci/services installs it as root)"
    if os.environ.get("MLOPS_REQUIRE_PROMTOOL") == "1":
        pytest.fail(f"{message}; MLOPS_REQUIRE_PROMTOOL=1 (make unit) requires it")
    pytest.skip(f"{message}; `make test` requires it")


def run_promtool(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
