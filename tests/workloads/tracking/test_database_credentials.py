"""Credentials from the secret: cached, re-read on a rejection, never re-read in a storm.

No database here: the hook is driven through a stand-in dialect whose `connect` accepts one password.
test_password_rotation.py does the same against real PostgreSQL and a real server.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError

from workloads.tracking.credentials_hook import CredentialsHook, install_credentials_hook
from workloads.tracking.database_credentials import CredentialsCache, is_password_rejection
from workloads.tracking.database_secret import DatabaseCredentials, DatabaseSecretError, DatabaseSecretSettings

OLD = DatabaseCredentials("mlflow", "old-password")
NEW = DatabaseCredentials("mlflow", "new-password")
REJECTED = 'connection failed: connection to server at "db", port 5432 failed: FATAL:  password authentication failed'


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Secret:
    """A secret whose content the test changes; counts reads."""

    def __init__(self, credentials: DatabaseCredentials) -> None:
        self.credentials: DatabaseCredentials | None = credentials
        self.reads = 0

    def read(self) -> DatabaseCredentials:
        self.reads += 1
        if self.credentials is None:
            raise DatabaseSecretError("cannot read the database secret arn:test: AccessDenied")
        return self.credentials


def test_rejections_are_recognised_by_sqlstate_or_by_the_servers_message() -> None:
    assert is_password_rejection(psycopg.OperationalError(REJECTED))
    assert is_password_rejection(OperationalError("SELECT 1", {}, psycopg.OperationalError(REJECTED)))
    refused = psycopg.OperationalError('connection to server at "db", port 5432 failed: Connection refused')
    assert not is_password_rejection(refused)


def test_the_secret_is_read_once_then_served_from_the_cache() -> None:
    secret = Secret(OLD)
    cache = CredentialsCache(secret.read)
    assert cache.current() == OLD
    assert cache.current() == OLD
    assert secret.reads == 1


def test_a_first_rejection_re_reads_at_once_and_a_stale_secret_is_not_re_read_in_a_storm() -> None:
    secret, clock = Secret(OLD), Clock()
    cache = CredentialsCache(secret.read, minimum_refresh_seconds=5, clock=clock)
    cache.current()
    # The database has the new password, the secret not yet: one read, nothing to try.
    refresh = cache.after_rejection(OLD)
    assert (refresh.credentials, refresh.secret_read, secret.reads) == (None, True, 2)
    clock.now += 1
    assert cache.after_rejection(OLD).credentials is None
    assert secret.reads == 2, "no read within the minimum interval"
    secret.credentials = NEW
    clock.now += 4
    refresh = cache.after_rejection(OLD)
    assert (refresh.credentials, refresh.secret_read, secret.reads) == (NEW, True, 3)
    assert cache.current() == NEW


def test_a_re_read_that_brought_new_credentials_does_not_delay_the_next() -> None:
    secret, clock = Secret(OLD), Clock()
    cache = CredentialsCache(secret.read, minimum_refresh_seconds=5, clock=clock)
    cache.current()
    secret.credentials = NEW
    assert cache.after_rejection(OLD).credentials == NEW
    clock.now += 1
    newest = DatabaseCredentials("mlflow", "newest-password")  # a second rotation right after the first
    secret.credentials = newest
    assert cache.after_rejection(NEW).credentials == newest
    assert secret.reads == 3


def test_a_rejection_of_credentials_already_replaced_is_answered_without_a_read() -> None:
    secret = Secret(OLD)
    cache = CredentialsCache(secret.read)
    cache.current()
    secret.credentials = NEW
    assert cache.after_rejection(OLD).credentials == NEW
    assert cache.after_rejection(OLD) == cache.after_rejection(OLD)  # another connection's late rejection
    assert secret.reads == 2


def test_an_unreadable_secret_raises_and_counts_as_a_read() -> None:
    secret, clock = Secret(OLD), Clock()
    cache = CredentialsCache(secret.read, minimum_refresh_seconds=5, clock=clock)
    cache.current()
    secret.credentials = None
    with pytest.raises(DatabaseSecretError, match="AccessDenied"):
        cache.after_rejection(OLD)
    assert cache.after_rejection(OLD).credentials is None
    assert secret.reads == 2


class Database:
    """A stand-in dialect: `connect` succeeds with one password and rejects the others like libpq."""

    name = "postgresql"
    loaded_dbapi = psycopg

    def __init__(self, password: str) -> None:
        self.password = password
        self.attempts: list[str] = []

    def connect(self, *cargs: Any, **cparams: Any) -> str:
        self.attempts.append(cparams["password"])
        if cparams["password"] != self.password:
            raise psycopg.OperationalError(REJECTED)
        return "connection"


SETTINGS = DatabaseSecretSettings(secret_arn="arn:test", host="db.internal", port=5432)
CPARAMS = {"host": "db.internal", "port": 5432, "user": "mlflow", "dbname": "mlflow", "sslmode": "require"}


def _connect(hook: CredentialsHook, database: Database) -> Any:
    return hook(database, None, [], dict(CPARAMS))  # type: ignore[arg-type]


def test_the_hook_reconnects_with_the_re_read_password(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(OLD)
    hook = CredentialsHook(SETTINGS, CredentialsCache(secret.read))
    database = Database(OLD.password)
    assert _connect(hook, database) == "connection"
    database.password, secret.credentials = NEW.password, NEW  # rotated in the database and in the secret
    with caplog.at_level(logging.INFO, logger="workloads.tracking.database"):
        assert _connect(hook, database) == "connection"
    assert database.attempts == [OLD.password, OLD.password, NEW.password]
    assert "connected with the password re-read from arn:test" in caplog.text
    assert OLD.password not in caplog.text and NEW.password not in caplog.text


def test_the_hook_raises_the_rejection_when_the_secret_has_nothing_newer(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(OLD)
    hook = CredentialsHook(SETTINGS, CredentialsCache(secret.read))
    database = Database(NEW.password)  # changed in the database only
    with caplog.at_level(logging.INFO, logger="workloads.tracking.database"), pytest.raises(psycopg.OperationalError):
        _connect(hook, database)
    assert database.attempts == [OLD.password]
    assert "holds no newer one yet" in caplog.text


def test_the_hook_raises_the_rejection_when_the_secret_cannot_be_re_read(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(OLD)
    hook = CredentialsHook(SETTINGS, CredentialsCache(secret.read))
    hook.cache.current()
    secret.credentials = None
    with caplog.at_level(logging.INFO, logger="workloads.tracking.database"), pytest.raises(psycopg.OperationalError):
        _connect(hook, Database(NEW.password))
    assert "the secret cannot be re-read: cannot read the database secret arn:test: AccessDenied" in caplog.text


def test_other_connection_errors_are_not_a_reason_to_read_the_secret() -> None:
    secret = Secret(OLD)
    hook = CredentialsHook(SETTINGS, CredentialsCache(secret.read))

    class Unreachable(Database):
        def connect(self, *cargs: Any, **cparams: Any) -> str:
            raise psycopg.OperationalError("Connection refused")

    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        _connect(hook, Unreachable(OLD.password))
    assert secret.reads == 1


@pytest.mark.parametrize(
    ("uri", "applies"),
    [
        ("postgresql://mlflow@db.internal:5432/mlflow", True),
        ("postgresql://mlflow@db.internal/mlflow", True),  # libpq's default port
        ("postgresql://mlflow:given@db.internal:5432/mlflow", False),  # brings its own password
        ("postgresql://mlflow@elsewhere:5432/mlflow", False),
        ("postgresql://mlflow@db.internal:6432/mlflow", False),
        ("sqlite:////tmp/mlflow.db", False),
    ],
)
def test_the_hook_only_fills_in_connections_to_its_database_without_a_password(uri: str, applies: bool) -> None:
    dialect = sqlalchemy.create_engine(uri).dialect
    _, cparams = dialect.create_connect_args(sqlalchemy.make_url(uri))
    hook = CredentialsHook(SETTINGS, CredentialsCache(Secret(OLD).read))
    assert hook.applies_to(dialect, cparams) is applies


def test_without_a_secret_no_hook_is_installed() -> None:
    assert install_credentials_hook({"MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/mlflow.db"}) is None
