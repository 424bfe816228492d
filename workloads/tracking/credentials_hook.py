"""Give every new SQLAlchemy connection to the platform database the secret's current password.

MLflow builds several engines (tracking and registry store, basic-auth store, `mlflow db upgrade`)
in `mlflow.store.db.utils.create_sqlalchemy_engine`, in the `mlflow server` process and again in each
uvicorn worker. Rather than replacing that function, one `do_connect` listener on the Engine class
covers all of them, including engines created before it was installed: it fills in the password of
connections to MLFLOW_DATABASE_HOST whose URI has none (the URI from database_secret.py), and when
the database rejects it, re-reads the secret and tries once more. MLflow's engines ping pooled
connections before use (`pool_pre_ping=True`), so a connection dropped after a rotation is replaced
through this listener too.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine

from workloads.tracking.database_credentials import CredentialsCache, is_password_rejection
from workloads.tracking.database_secret import (
    DatabaseCredentials,
    DatabaseSecretError,
    DatabaseSecretSettings,
    configured_secret,
    read_credentials,
)

logger = logging.getLogger("workloads.tracking.database")
_installed: CredentialsHook | None = None


class CredentialsHook:
    """The `do_connect` listener for one database and its secret."""

    def __init__(self, settings: DatabaseSecretSettings, cache: CredentialsCache) -> None:
        self.settings = settings
        self.cache = cache

    def applies_to(self, dialect: Dialect, cparams: Mapping[str, Any]) -> bool:
        """Connections to the configured database that bring no password of their own."""
        return (
            dialect.name == "postgresql"
            and not cparams.get("password")
            and str(cparams.get("host", "")) == self.settings.host
            and int(cparams.get("port") or 5432) == self.settings.port
        )

    def __call__(self, dialect: Dialect, connection_record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        """SQLAlchemy's do_connect: a DBAPI connection, or None to let SQLAlchemy connect as usual."""
        if not self.applies_to(dialect, cparams):
            return None
        credentials = self.cache.current()
        try:
            return self._connect(dialect, cargs, cparams, credentials)
        except dialect.loaded_dbapi.Error as error:
            if not is_password_rejection(error):
                raise
            fresh = self._credentials_after_rejection(credentials)
            if fresh is None:
                raise
            connection = self._connect(dialect, cargs, cparams, fresh)
            logger.info("connected with the password re-read from %s", self.settings.secret_arn)
            return connection

    def _connect(
        self, dialect: Dialect, cargs: list[Any], cparams: dict[str, Any], credentials: DatabaseCredentials
    ) -> Any:
        return dialect.connect(*cargs, **{**cparams, "password": credentials.password})

    def _credentials_after_rejection(self, rejected: DatabaseCredentials) -> DatabaseCredentials | None:
        """Re-read the secret; None (logged) when there is nothing new to try."""
        try:
            refresh = self.cache.after_rejection(rejected)
        except DatabaseSecretError as error:
            # The rejection is what the caller sees; this says why it was not repaired.
            logger.warning("the database rejected its password and the secret cannot be re-read: %s", error)
            return None
        # Logged only when the secret was read, so at most once per minimum interval, not per request.
        if refresh.credentials is None and refresh.secret_read:
            logger.warning(
                "the database rejected the password for user %s and %s holds no newer one yet "
                "(a rotation in progress?); it is re-read on a rejection after %.0f s",
                rejected.username,
                self.settings.secret_arn,
                self.cache.minimum_refresh_seconds,
            )
        return refresh.credentials


def log_database_events_to_stderr() -> None:
    """Give the database logger (this hook's and readiness.py's) a handler, once per process."""
    # Neither MLflow's nor uvicorn's logging configuration has a root handler: without one these
    # records would be dropped (INFO) or reach Python's last-resort handler without a time stamp.
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def install_credentials_hook(environ: Mapping[str, str]) -> CredentialsHook | None:
    """Install the listener for the MLFLOW_DATABASE_* secret (once per process); None if not configured."""
    global _installed
    settings = configured_secret(environ)
    if settings is None:
        return None
    if _installed is None:
        log_database_events_to_stderr()
        _installed = CredentialsHook(settings, CredentialsCache(lambda: read_credentials(settings.secret_arn)))
        event.listen(Engine, "do_connect", _installed)
    return _installed
