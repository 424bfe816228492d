"""Basic auth is on wherever the tracking server runs: no credentials, no data."""

from __future__ import annotations

import base64
import stat
import urllib.error
import urllib.request

import pytest

from workloads.tracking.local import LocalTrackingServer

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=5"


def _status(url: str, credentials: tuple[str, str] | None) -> int:
    headers = {}
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded-sqlite"),
        pytest.param("postgres", id="postgres-s3", marks=pytest.mark.services),
    ]
)
def server(request: pytest.FixtureRequest, tracking_server: LocalTrackingServer) -> LocalTrackingServer:
    return tracking_server if request.param == "embedded" else request.getfixturevalue("postgres_tracking_server")


def test_rest_api_requires_credentials(server: LocalTrackingServer) -> None:
    assert _status(server.url + SEARCH, None) == 401
    assert _status(server.url + SEARCH, (server.username, "wrong-password-123")) == 401
    assert _status(server.url + SEARCH, ("admin", "password1234")) == 401
    assert _status(server.url + SEARCH, (server.username, server.password)) == 200


def test_health_stays_open_for_probes(server: LocalTrackingServer) -> None:
    # Kubernetes probes carry no credentials; MLflow exempts /health from auth.
    assert _status(server.url + "/health", None) == 200


def test_local_admin_password_is_generated_private_and_not_a_default(tracking_server: LocalTrackingServer) -> None:
    password_file = tracking_server.log_path.parent / "admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == tracking_server.password
    assert len(tracking_server.password) >= 24
    assert tracking_server.password_created
