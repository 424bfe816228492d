"""An RDS password rotation against real PostgreSQL: the server reconnects without a restart.

The database is a private PostgreSQL cluster that checks passwords and serves TLS like RDS; the
secret lives in moto's Secrets Manager (the session's moto server), which the tracking server reads
exactly as in the cluster (MLFLOW_DATABASE_SECRET_ARN / HOST / PORT / NAME). A rotation is what RDS
does: the role's password changes in the database and in the secret. Existing sessions survive a
password change in PostgreSQL, so the tests end them (`pg_terminate_backend`): every later request
needs a new connection with the new password.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient
from psycopg import sql
from sqlalchemy import event

from tests.services import DUMMY_AWS_ENVIRONMENT, MotoS3Server, PrivatePostgres, point_client_at
from workloads.tracking.credentials_hook import CredentialsHook
from workloads.tracking.database_credentials import MINIMUM_REFRESH_SECONDS, CredentialsCache
from workloads.tracking.database_secret import DatabaseCredentials, DatabaseSecretSettings, read_credentials
from workloads.tracking.local import LocalTrackingServer, start_local_tracking
from workloads.tracking.readiness import REASON_PASSWORD_REJECTED, REASON_UNREACHABLE

pytestmark = pytest.mark.services

ROLE = "mlflow"
DATABASE = "mlflow"
# uvicorn's line for each worker it starts: a restarted worker would re-read the secret anyway.
WORKER_STARTED = re.compile(r"Started server process \[\d+\]")
REREAD_LOGGED = "connected with the password re-read from"


@dataclass
class RotatingDatabase:
    """The database, its secret, and every password either has held (none may leak)."""

    postgres: PrivatePostgres
    secrets_manager: Any
    secret_arn: str
    passwords: list[str] = field(default_factory=list)

    def new_password(self) -> str:
        password = f"rotated-{secrets.token_urlsafe(18)}"
        self.passwords.append(password)
        return password

    def admin(self, statement: sql.Composed) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.postgres.admin_conninfo, autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def set_database_password(self, password: str) -> None:
        self.admin(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password)))

    def set_secret_password(self, password: str) -> None:
        document = json.dumps({"username": ROLE, "password": password})
        self.secrets_manager.put_secret_value(SecretId=self.secret_arn, SecretString=document)

    def rotate(self) -> str:
        """What an RDS-managed rotation does: a new password in the database, then in the secret."""
        password = self.new_password()
        self.set_database_password(password)
        self.set_secret_password(password)
        return password

    def terminate_sessions(self) -> int:
        """End every session of the role; the number ended."""
        rows = self.admin(
            sql.SQL("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = {}").format(
                sql.Literal(ROLE)
            )
        )
        return int(rows[0][0])

    def environment(self, endpoint_url: str) -> dict[str, str]:
        """The tracking server's view of it, as the Deployment sets it (plus moto's endpoint)."""
        return {
            **DUMMY_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint_url,
            "MLFLOW_DATABASE_SECRET_ARN": self.secret_arn,
            "MLFLOW_DATABASE_HOST": "127.0.0.1",
            "MLFLOW_DATABASE_PORT": str(self.postgres.port),
            "MLFLOW_DATABASE_NAME": DATABASE,
        }


@pytest.fixture(scope="module")
def rotating_database(s3_server: MotoS3Server) -> Iterator[RotatingDatabase]:
    postgres = PrivatePostgres(like_rds=True)
    postgres.start()
    try:
        secrets_manager = s3_server.client("secretsmanager")
        created = secrets_manager.create_secret(
            Name=f"rds!db-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"username": ROLE, "password": "unset"})
        )
        database = RotatingDatabase(postgres, secrets_manager, created["ARN"])
        password = database.new_password()
        database.admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password)))
        database.admin(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(ROLE)))
        database.set_secret_password(password)
        yield database
    finally:
        postgres.destroy()


@pytest.fixture(scope="module")
def rotating_server(
    rotating_database: RotatingDatabase, s3_server: MotoS3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalTrackingServer]:
    """The cluster's database path: URI and password from the secret, two workers as deployed."""
    with start_local_tracking(
        tmp_path_factory.mktemp("tracking-rotation"),
        database_from_secret=True,
        workers=2,
        extra_environment=rotating_database.environment(s3_server.endpoint_url),
    ) as server:
        yield server


def _get(server: LocalTrackingServer, path: str, authenticated: bool = False) -> tuple[int, str]:
    """Status and body of one request, without any client retries."""
    headers = {}
    if authenticated:
        token = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(f"{server.url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _wait_for_readiness(
    server: LocalTrackingServer, ready: bool, timeout: float = 60.0, in_a_row: int = 6
) -> tuple[float, list[dict[str, str]]]:
    """Wait for `in_a_row` answers in a row (so both workers, most likely) that say `ready`.

    Returns the seconds until the first of them, and their bodies.
    """
    started = time.monotonic()
    streak_started, answers = 0.0, list[dict[str, str]]()
    while time.monotonic() - started < timeout:
        asked = time.monotonic()
        status, body = _get(server, "/readyz")
        assert status in (200, 503), (status, body)
        if (status == 200) != ready:
            answers = []
        else:
            streak_started = streak_started if answers else asked
            answers.append(json.loads(body))
        if len(answers) == in_a_row:
            return streak_started - started, answers
        time.sleep(0.1)
    raise AssertionError(f"/readyz did not report ready={ready} {in_a_row} times in a row within {timeout:.0f} s")


def _assert_no_password_in(database: RotatingDatabase, *texts: str) -> None:
    for text in texts:
        for password in database.passwords:
            assert password not in text, "a database password leaked"


def _log(server: LocalTrackingServer) -> str:
    return server.log_path.read_text(encoding="utf-8", errors="replace")


def _steps(client: MlflowClient, run_id: str) -> list[int]:
    return sorted(metric.step for metric in client.get_metric_history(run_id, "loss"))


def test_the_credentials_hook_reconnects_after_a_rotation(
    rotating_database: RotatingDatabase, aws_environment: MotoS3Server
) -> None:
    """In-process, on one engine: the rejected password triggers exactly one re-read of the secret."""
    reads: list[DatabaseCredentials] = []

    def read() -> DatabaseCredentials:
        reads.append(read_credentials(rotating_database.secret_arn))
        return reads[-1]

    settings = DatabaseSecretSettings(
        secret_arn=rotating_database.secret_arn, host="127.0.0.1", port=rotating_database.postgres.port, name=DATABASE
    )
    hook = CredentialsHook(settings, CredentialsCache(read, minimum_refresh_seconds=0))
    engine = sqlalchemy.create_engine(settings.backend_uri(ROLE), pool_pre_ping=True)
    event.listen(engine, "do_connect", hook)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT current_user")).scalar() == ROLE
    rotating_database.rotate()
    assert rotating_database.terminate_sessions() == 1  # the pooled session
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    engine.dispose()
    assert len(reads) == 2 and reads[0] != reads[1]


def test_tracking_continues_across_a_rotation_without_a_restart(
    monkeypatch: pytest.MonkeyPatch, rotating_database: RotatingDatabase, rotating_server: LocalTrackingServer
) -> None:
    point_client_at(monkeypatch, rotating_server)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a failed request must fail the test
    client = MlflowClient()
    run = client.create_run(client.create_experiment(f"rotation-{uuid.uuid4().hex[:8]}"))
    client.log_metric(run.info.run_id, "loss", 1.0, step=0)
    _wait_for_readiness(rotating_server, ready=True)
    workers_started = len(WORKER_STARTED.findall(_log(rotating_server)))

    rotating_database.rotate()
    terminated = rotating_database.terminate_sessions()
    started = time.monotonic()
    status, body = _get(rotating_server, f"/api/2.0/mlflow/runs/get?run_id={run.info.run_id}", authenticated=True)
    first_call = time.monotonic() - started
    for step in range(1, 11):
        client.log_metric(run.info.run_id, "loss", 1.0 / (step + 1), step=step)
    ten_more = time.monotonic() - started - first_call
    readiness_seconds, answers = _wait_for_readiness(rotating_server, ready=True)

    print(
        f"\nrotation: {terminated} sessions ended; first request {status} after {first_call:.2f} s, "
        f"10 metric calls in {ten_more:.2f} s, /readyz ready x{len(answers)} within {readiness_seconds:.2f} s"
    )
    assert terminated >= 2, "the server's pooled sessions were there to end"
    assert status == 200, body
    assert first_call < 5
    assert _steps(client, run.info.run_id) == list(range(11))
    log = _log(rotating_server)
    assert REREAD_LOGGED in log, "recovered by re-reading the secret"
    assert rotating_server.process.poll() is None
    assert len(WORKER_STARTED.findall(log)) == workers_started, "no worker was restarted"
    _assert_no_password_in(rotating_database, log, body)


def test_readiness_follows_a_database_outage_while_liveness_stays_up(
    monkeypatch: pytest.MonkeyPatch, rotating_database: RotatingDatabase, rotating_server: LocalTrackingServer
) -> None:
    _wait_for_readiness(rotating_server, ready=True)
    rotating_database.postgres.stop()
    try:
        unready_seconds, answers = _wait_for_readiness(rotating_server, ready=False)
        assert answers == [{"status": "not ready", "reason": REASON_UNREACHABLE}] * len(answers)
        assert _get(rotating_server, "/health")[0] == 200, "liveness does not depend on the database"
    finally:
        rotating_database.postgres.start()
    ready_seconds, _ = _wait_for_readiness(rotating_server, ready=True)
    print(
        f"\noutage: not ready within {unready_seconds:.2f} s of the stop, ready {ready_seconds:.2f} s after the start"
    )
    point_client_at(monkeypatch, rotating_server)
    assert MlflowClient().search_experiments(max_results=1) is not None


def test_a_password_changed_only_in_the_database_is_one_clear_reason(
    monkeypatch: pytest.MonkeyPatch, rotating_database: RotatingDatabase, rotating_server: LocalTrackingServer
) -> None:
    _wait_for_readiness(rotating_server, ready=True)
    password = rotating_database.new_password()
    rotating_database.set_database_password(password)
    rotating_database.terminate_sessions()

    unready_seconds, answers = _wait_for_readiness(rotating_server, ready=False)
    assert answers == [{"status": "not ready", "reason": REASON_PASSWORD_REJECTED}] * len(answers)
    status, body = _get(rotating_server, "/api/2.0/mlflow/experiments/search?max_results=1", authenticated=True)
    assert status >= 500, "a request that needs the database fails while its password is wrong"

    rotating_database.set_secret_password(password)  # the rotation reaches the secret
    ready_seconds, _ = _wait_for_readiness(rotating_server, ready=True)
    print(
        f"\ndatabase-only change: not ready within {unready_seconds:.2f} s (request: {status}); "
        f"ready {ready_seconds:.2f} s after the secret was updated"
    )
    assert ready_seconds < MINIMUM_REFRESH_SECONDS + 10
    point_client_at(monkeypatch, rotating_server)
    assert MlflowClient().search_experiments(max_results=1) is not None
    log = _log(rotating_server)
    assert "holds no newer one yet" in log
    _assert_no_password_in(rotating_database, log, body, json.dumps(answers))
