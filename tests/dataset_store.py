"""The session's dataset store (tests/pipelines, tests/cli), and a private copy a test may damage.

Registered for every folder by tests/conftest.py. The tracking server is the session's too: tests that
look at the registry compare what changed around their own run instead of assuming an empty registry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workloads.datasets.builders import BUILDERS
from workloads.datasets.versions import snapshot


@pytest.fixture(scope="session")
def snapshot_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local dataset store holding v1 of every catalogue dataset (never modified by tests)."""
    store = tmp_path_factory.mktemp("dataset-store")
    for name in BUILDERS:
        snapshot(name, store)
    return store


@pytest.fixture
def private_store(snapshot_store: Path, tmp_path: Path) -> Path:
    """A copy of the session store that a test may damage."""
    copy = tmp_path / "store"
    shutil.copytree(snapshot_store, copy)
    for path in copy.rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    return copy
