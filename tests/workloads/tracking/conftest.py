"""The cluster's tracking configuration on loopback: PostgreSQL backend, artifacts proxied to S3.

PostgreSQL is the system cluster started by `.ci/services` (URI in MLOPS_TEST_POSTGRES_URI); every
session gets a fresh database on it. The S3 API and the embedded (SQLite) tracking server are the
session's own (tests/conftest.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.services import DUMMY_AWS_ENVIRONMENT, MotoS3Server
from workloads.tracking.local import LocalTrackingServer, start_local_tracking

DEFAULT_POSTGRES_URI = "postgresql://mlops:mlops@127.0.0.1:5432/mlops"
ARTIFACT_BUCKET = "mlflow-artifacts"


@pytest.fixture(scope="session")
def postgres_database_uri() -> Iterator[str]:
    """A fresh database for this session on the shared PostgreSQL cluster, dropped afterwards."""
    import psycopg
    from psycopg import sql

    admin_uri = os.environ.get("MLOPS_TEST_POSTGRES_URI", DEFAULT_POSTGRES_URI)
    try:
        connection = psycopg.connect(admin_uri, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.fail(f"PostgreSQL is not reachable at {admin_uri} (start it with `sudo .ci/services`): {error}")
    name = f"mlops_test_{uuid.uuid4().hex[:12]}"
    with connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = admin_uri.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin_uri, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_tracking_server(
    postgres_database_uri: str, s3_server: MotoS3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalTrackingServer]:
    """The cluster's configuration on loopback: PostgreSQL backend, artifacts proxied to S3."""
    s3_server.create_bucket(ARTIFACT_BUCKET)
    with start_local_tracking(
        tmp_path_factory.mktemp("tracking-postgres"),
        backend_store_uri=postgres_database_uri,
        artifacts_destination=f"s3://{ARTIFACT_BUCKET}/mlflow",
        s3_endpoint_url=s3_server.endpoint_url,
        extra_environment=DUMMY_AWS_ENVIRONMENT,
    ) as server:
        yield server
