"""A PostgreSQL restart during training loses no metrics; a long outage is reported, not swallowed.

Uses a private PostgreSQL instance (initdb into a temporary directory, its own port) so stopping it
cannot disturb the shared cluster other tests use.
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.services import PrivatePostgres, point_client_at
from workloads.tracking.instrument import TrackingFlushError, tracked_run
from workloads.tracking.local import LocalTrackingServer, start_local_tracking

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    database = PrivatePostgres()
    database.start()
    try:
        yield database
    finally:
        database.destroy()


@pytest.fixture(scope="module")
def server_on_private_postgres(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalTrackingServer]:
    state: Path = tmp_path_factory.mktemp("tracking-private-postgres")
    with start_local_tracking(state, backend_store_uri=private_postgres.uri) as server:
        yield server


def _status_of_one_request(server: LocalTrackingServer, run_id: str) -> int:
    """HTTP status of a single metric-history request, without the client's retries."""
    token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    request = urllib.request.Request(
        f"{server.url}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key=loss",
        headers={"Authorization": f"Basic {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _steps(run_id: str) -> list[int]:
    return sorted(metric.step for metric in MlflowClient().get_metric_history(run_id, "loss"))


def test_metrics_logged_across_a_database_restart_are_all_kept(
    monkeypatch: pytest.MonkeyPatch,
    private_postgres: PrivatePostgres,
    server_on_private_postgres: LocalTrackingServer,
) -> None:
    point_client_at(monkeypatch, server_on_private_postgres)
    # Enough retries (backoff 0, 2, 4, 8, 16 s) to bridge a few seconds of outage.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "6")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    with tracked_run(experiment=f"outage-{uuid.uuid4().hex[:8]}") as run:
        for step in range(20):
            run.log_metric("loss", 1.0 / (step + 1), step)
        run.flush()

        private_postgres.stop()
        # The outage is real: the server answers 503, which MLflow's client retries with backoff.
        assert _status_of_one_request(server_on_private_postgres, run.run_id) == 503
        for step in range(20, 30):  # queued while the database is down
            run.log_metric("loss", 1.0 / (step + 1), step)
        time.sleep(3)
        private_postgres.start()
        for step in range(30, 80):
            run.log_metric("loss", 1.0 / (step + 1), step)
            time.sleep(0.01)
        run.flush()

    assert _steps(run.run_id) == list(range(80))
    assert MlflowClient().get_run(run.run_id).info.status == "FINISHED"


def test_a_longer_outage_surfaces_as_a_flush_error(
    monkeypatch: pytest.MonkeyPatch,
    private_postgres: PrivatePostgres,
    server_on_private_postgres: LocalTrackingServer,
) -> None:
    point_client_at(monkeypatch, server_on_private_postgres)
    with tracked_run(experiment=f"outage-{uuid.uuid4().hex[:8]}") as run:
        run.log_metric("loss", 1.0, 0)
        run.flush()
        # The outage outlasts the client's retries (one retry, no backoff worth waiting for).
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        private_postgres.stop()
        try:
            run.log_metric("loss", 0.5, 1)
            with pytest.raises(
                TrackingFlushError, match=f"1 metric batch\\(es\\) of run {run.run_id} were not written"
            ):
                run.flush()
        finally:
            private_postgres.start()
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        run.log_metric("loss", 0.25, 2)
    # The lost value is reported above; everything before and after the outage is kept.
    assert _steps(run.run_id) == [0, 2]
