"""Fixtures every test folder shares: the session's tracking server and S3 API, and the MLflow and AWS
client settings that point this process at them.

Starting an MLflow server costs ~30 s on two cores, so the session starts one and every folder uses
it; tests isolate themselves by their own experiment and registered-model names, or compare the
registry around their own run instead of assuming an empty one. The S3 API is one `moto_server` on a
free loopback port; tests isolate themselves by bucket (`MotoS3Server.fresh_bucket`).

The dataset store (`snapshot_store`, `private_store`) is in tests/dataset_store.py. What only one
folder needs stays in that folder's conftest.py (the PostgreSQL-backed tracking server, the serving
process, the drift job's stores).

Which tests form the fast tier (`make unit-fast`) is decided in tests/fast_tier.py; the hooks are below.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dataset_store import private_store, snapshot_store  # noqa: F401 (fixtures, for every folder)
from tests.fast_tier import CROSS_FOLDER, in_fast_tier, refuse_processes_and_plans
from tests.services import MotoS3Server, client_environment, point_client_at
from workloads.tracking.local import LocalTrackingServer, start_local_tracking


@pytest.fixture(scope="session")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTrackingServer]:
    """`mlops local tracking`'s defaults: SQLite and a local artifact folder in a fresh state directory."""
    with start_local_tracking(tmp_path_factory.mktemp("tracking") / ".mlops" / "tracking") as server:
        yield server


@pytest.fixture(scope="session")
def tracking_client_environment(tracking_server: LocalTrackingServer) -> dict[str, str]:
    """The variables that point MLflow clients at the session's server, for session-scoped fixtures."""
    return client_environment(tracking_server)


@pytest.fixture
def tracking_environment(tracking_server: LocalTrackingServer, monkeypatch: pytest.MonkeyPatch) -> LocalTrackingServer:
    """This process, and the processes it starts (pipeline steps, the drift job), use the session's server."""
    point_client_at(monkeypatch, tracking_server)
    return tracking_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3Server]:
    """An S3 API on loopback (moto answers Secrets Manager, SNS and SQS as well)."""
    server = MotoS3Server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws_environment(s3_server: MotoS3Server, monkeypatch: pytest.MonkeyPatch) -> MotoS3Server:
    """Dummy credentials, and every AWS client this process creates pointed at the session's S3 API."""
    s3_server.point_clients(monkeypatch)
    return s3_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast-tier",
        action="store_true",
        help="run only the fast tier: tests that start no process and render no whole-stack plan (tests/fast_tier.py)",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A --fast-tier run does not even import the cross-folder tests (tests/e2e, tests/ci)."""
    if config.getoption("--fast-tier") and collection_path in CROSS_FOLDER:
        return True
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: `pytest -m fast` sees the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    outside: list[pytest.Item] = []
    for item in items:
        if in_fast_tier(item):
            item.add_marker(pytest.mark.fast)
        else:
            outside.append(item)
    if config.getoption("--fast-tier"):
        if outside:
            config.hook.pytest_deselected(items=outside)
            items[:] = [item for item in items if item.get_closest_marker("fast")]
        refuse_processes_and_plans()
