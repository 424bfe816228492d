"""The database's RDS-managed secret: where it is configured, what it holds, and the backend-store URI.

In the cluster the PostgreSQL password lives only in Secrets Manager (RDS creates it and rotates it,
every 7 days by default); the pod reads it through its IRSA role, so the password is in no Pulumi
state, no Kubernetes object and no pod spec. The backend-store URI built here carries the user name
but no password, so the password is in no command line, no environment and no generated file either:
each process supplies it when it opens a connection, and re-reads the secret when the database
rejects it (credentials_hook.py), so a rotation needs no restart.

The variables (used only when MLFLOW_BACKEND_STORE_URI is not set) are `DatabaseSecretSettings`' fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import quote

from pydantic import model_validator

from workloads.settings import Stripped, WorkloadSettings, variable

DEFAULT_PORT = 5432
DEFAULT_NAME = "mlflow"
# A connection waits on Secrets Manager while it re-reads the secret: fail within seconds rather
# than botocore's default 60 s connect and read timeouts.
SECRETS_MANAGER_TIMEOUT_SECONDS = 3
SECRETS_MANAGER_ATTEMPTS = 3


class DatabaseSecretError(ValueError):
    """The secret is missing, unreadable or not an RDS credentials document."""


@dataclass(frozen=True)
class DatabaseCredentials:
    """One version of the secret's content; the password never appears in a repr or a log line."""

    username: str
    password: str = field(repr=False)


class DatabaseVariables:
    """Where the tracking server finds its database's RDS-managed secret (infra/tracking_server.py sets them)."""

    SECRET_ARN = "MLFLOW_DATABASE_SECRET_ARN"
    HOST = "MLFLOW_DATABASE_HOST"
    PORT = "MLFLOW_DATABASE_PORT"
    NAME = "MLFLOW_DATABASE_NAME"


class DatabaseSecretSettings(WorkloadSettings):
    """Where the secret is and which database it opens."""

    error_class = DatabaseSecretError

    secret_arn: Stripped = variable(DatabaseVariables.SECRET_ARN, "")
    """ARN of the database's secret (JSON with `username` and `password`)"""
    host: Stripped = variable(DatabaseVariables.HOST, "")
    """database host name (required with the secret)"""
    port: int = variable(DatabaseVariables.PORT, DEFAULT_PORT, ge=1, le=65535, expected="a port number")
    """database port"""
    name: Stripped = variable(DatabaseVariables.NAME, DEFAULT_NAME)
    """database name"""

    @model_validator(mode="after")
    def _host_with_the_secret(self) -> Self:
        if self.secret_arn and not self.host:
            raise DatabaseSecretError(f"{DatabaseVariables.HOST} is required with {DatabaseVariables.SECRET_ARN}")
        return self

    def backend_uri(self, username: str) -> str:
        """`postgresql://user@host:port/name?sslmode=require`: no password (see the module docstring)."""
        # TLS is required by the parameter group; asking for it here makes a misconfiguration fail loudly.
        return f"postgresql://{quote(username, safe='')}@{self.host}:{self.port}/{self.name}?sslmode=require"


def _secrets_manager() -> Any:
    import boto3  # only the cluster path needs AWS
    from botocore.config import Config

    config = Config(
        connect_timeout=SECRETS_MANAGER_TIMEOUT_SECONDS,
        read_timeout=SECRETS_MANAGER_TIMEOUT_SECONDS,
        retries={"max_attempts": SECRETS_MANAGER_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client("secretsmanager", config=config)


def read_credentials(secret_arn: str) -> DatabaseCredentials:
    """The secret's current version (stage AWSCURRENT); DatabaseSecretError says why it cannot be used."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        document = _secrets_manager().get_secret_value(SecretId=secret_arn)["SecretString"]
        credentials = json.loads(document)
        username, password = credentials["username"], credentials["password"]
    except (BotoCoreError, ClientError) as error:
        raise DatabaseSecretError(f"cannot read the database secret {secret_arn}: {error}") from None
    except (KeyError, TypeError, json.JSONDecodeError):
        raise DatabaseSecretError(
            f"the database secret {secret_arn} is not a JSON document with `username` and `password`"
        ) from None
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise DatabaseSecretError(
            f"the database secret {secret_arn}: `username` and `password` must be non-empty strings"
        )
    return DatabaseCredentials(username=username, password=password)


def configured_secret(environ: Mapping[str, str]) -> DatabaseSecretSettings | None:
    """The MLFLOW_DATABASE_* settings, or None when no secret is configured."""
    settings = DatabaseSecretSettings.from_environment(environ)
    return settings if settings.secret_arn else None


def backend_uri_from_secret(environ: Mapping[str, str]) -> str | None:
    """The password-less backend-store URI for the configured secret, or None when not configured.

    Reads the secret once, for the user name, and so that a missing or malformed secret stops the
    server at start with one message rather than failing every later connection.
    """
    settings = configured_secret(environ)
    if settings is None:
        return None
    return settings.backend_uri(read_credentials(settings.secret_arn).username)
