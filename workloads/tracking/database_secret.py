"""Build the backend-store URI from the database's RDS-managed secret, at server start.

In the cluster the PostgreSQL password lives only in Secrets Manager (RDS creates and rotates it);
the pod reads it through its IRSA role when it starts, so the password is in no Pulumi state, no
Kubernetes object and no pod spec. After a rotation, new connections fail, the probes restart the
pod, and the restarted server reads the new password.

Environment (all four together, used only when MLFLOW_BACKEND_STORE_URI is not set):
  MLFLOW_DATABASE_SECRET_ARN   ARN of the secret (JSON with `username` and `password`)
  MLFLOW_DATABASE_HOST         database host name
  MLFLOW_DATABASE_PORT         [5432]
  MLFLOW_DATABASE_NAME         [mlflow]
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote


class DatabaseSecretError(ValueError):
    """The secret is missing, unreadable or not an RDS credentials document."""


def backend_uri_from_secret(environ: Mapping[str, str]) -> str | None:
    """`postgresql://user:password@host:port/name?sslmode=require`, or None when not configured."""
    secret_arn = environ.get("MLFLOW_DATABASE_SECRET_ARN", "").strip()
    if not secret_arn:
        return None
    host = environ.get("MLFLOW_DATABASE_HOST", "").strip()
    if not host:
        raise DatabaseSecretError("MLFLOW_DATABASE_HOST is required with MLFLOW_DATABASE_SECRET_ARN")
    port = environ.get("MLFLOW_DATABASE_PORT", "5432").strip()
    if not port.isdigit():
        raise DatabaseSecretError(f"MLFLOW_DATABASE_PORT: expected a port number, got {port!r}")
    name = environ.get("MLFLOW_DATABASE_NAME", "mlflow").strip()

    import boto3  # only the cluster path needs AWS
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        document = boto3.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]
        credentials = json.loads(document)
        username, password = credentials["username"], credentials["password"]
    except (BotoCoreError, ClientError) as error:
        raise DatabaseSecretError(f"cannot read the database secret {secret_arn}: {error}") from None
    except (KeyError, TypeError, json.JSONDecodeError):
        raise DatabaseSecretError(
            f"the database secret {secret_arn} is not a JSON document with `username` and `password`"
        ) from None
    # TLS is required by the parameter group; asking for it here makes a misconfiguration fail loudly.
    return f"postgresql://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/{name}?sslmode=require"
