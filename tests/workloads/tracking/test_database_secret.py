"""The cluster path: the server builds its database URI from the RDS-managed secret at start.

The URI names the user but holds no password: each process supplies it per connection
(test_database_credentials.py, test_password_rotation.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from workloads.tracking.database_secret import (
    DatabaseCredentials,
    DatabaseSecretError,
    backend_uri_from_secret,
    read_credentials,
)
from workloads.tracking.server import main

REGION = "eu-west-1"


@pytest.fixture
def secret_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        created = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="rds!db-mlflow", SecretString=json.dumps({"username": "mlflow", "password": "p@ss/word:1"})
        )
        yield created["ARN"]


def test_uri_names_the_user_requires_tls_and_holds_no_password(secret_arn: str) -> None:
    uri = backend_uri_from_secret(
        {
            "MLFLOW_DATABASE_SECRET_ARN": secret_arn,
            "MLFLOW_DATABASE_HOST": "db.internal",
            "MLFLOW_DATABASE_PORT": "5432",
        }
    )
    assert uri == "postgresql://mlflow@db.internal:5432/mlflow?sslmode=require"


def test_credentials_are_read_whole_and_the_password_stays_out_of_reprs(secret_arn: str) -> None:
    credentials = read_credentials(secret_arn)
    assert credentials == DatabaseCredentials("mlflow", "p@ss/word:1")
    assert "p@ss" not in repr(credentials)


@pytest.mark.parametrize(
    "document",
    ["not json", json.dumps({"username": "mlflow"}), json.dumps({"username": "mlflow", "password": ""})],
)
def test_a_secret_that_is_no_credentials_document_is_one_clear_error(secret_arn: str, document: str) -> None:
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=secret_arn, SecretString=document)
    with pytest.raises(DatabaseSecretError, match=r"the database secret .*`username` and `password`"):
        read_credentials(secret_arn)


def test_a_port_that_is_no_number_is_refused() -> None:
    with pytest.raises(DatabaseSecretError, match="MLFLOW_DATABASE_PORT='db': expected a port number"):
        backend_uri_from_secret(
            {"MLFLOW_DATABASE_SECRET_ARN": "arn", "MLFLOW_DATABASE_HOST": "h", "MLFLOW_DATABASE_PORT": "db"}
        )


def test_not_configured_means_no_uri() -> None:
    assert backend_uri_from_secret({}) is None


def test_unknown_secret_is_one_clear_error(secret_arn: str) -> None:
    with pytest.raises(DatabaseSecretError, match="cannot read the database secret"):
        backend_uri_from_secret(
            {"MLFLOW_DATABASE_SECRET_ARN": secret_arn + "-gone", "MLFLOW_DATABASE_HOST": "db.internal"}
        )


def test_server_exits_2_when_the_secret_cannot_be_used(secret_arn: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["migrate"], environ={"MLFLOW_DATABASE_SECRET_ARN": secret_arn})
    assert code == 2
    assert "MLFLOW_DATABASE_HOST is required" in capsys.readouterr().err
