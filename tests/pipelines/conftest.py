"""Shared, session-scoped fixtures for the pipeline tests: one tracking server, one dataset store.

A tracking server costs ~30 s to start on two cores, so the session shares one; tests that look at
the registry compare what changed around their own run instead of assuming an empty registry.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from workloads import datasets
from workloads.tracking.local import LocalTrackingServer, start_local_tracking

# Same spirit as tests/workloads/conftest.py: no test waits minutes on MLflow's default retries.
FAST_CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    # Small models train faster on one thread, and the machine is shared (see workloads.training).
    "MLOPS_TORCH_THREADS": "1",
}


@pytest.fixture(scope="session")
def pipeline_tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTrackingServer]:
    """`mlops local tracking`'s defaults (SQLite + local artifacts), shared by the pipeline tests."""
    server = start_local_tracking(tmp_path_factory.mktemp("pipeline-tracking") / ".mlops" / "tracking")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tracking_environment(
    pipeline_tracking_server: LocalTrackingServer, monkeypatch: pytest.MonkeyPatch
) -> LocalTrackingServer:
    """Point this process and the pipeline's step subprocesses (they inherit it) at the server."""
    for name, value in {**pipeline_tracking_server.client_environment(), **FAST_CLIENT_ENVIRONMENT}.items():
        monkeypatch.setenv(name, value)
    return pipeline_tracking_server


@pytest.fixture(scope="session")
def snapshot_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local dataset store holding v1 of every catalogue dataset (never modified by tests)."""
    store = tmp_path_factory.mktemp("dataset-store")
    for name in datasets.BUILDERS:
        datasets.snapshot(name, store)
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
