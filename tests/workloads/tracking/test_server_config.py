"""The tracking-server entrypoint's configuration: what it accepts, refuses and the command it builds."""

from __future__ import annotations

import configparser
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workloads.tracking.app import APP_FACTORY
from workloads.tracking.database_secret import DatabaseSecretSettings
from workloads.tracking.mlflow_entrypoint import serve_platform_app
from workloads.tracking.server import (
    MLFLOW_ENTRYPOINT,
    MLFLOW_LEGACY_DEFAULT_PASSWORD,
    TrackingConfigError,
    TrackingServerConfig,
    build_migrate_command,
    build_server_command,
    config_from_environment,
    server_environment,
    write_auth_config,
)

VALID = {
    "MLFLOW_BACKEND_STORE_URI": "postgresql://mlflow:p%40ss@db.internal:5432/mlflow",
    "MLFLOW_ARTIFACTS_DESTINATION": "s3://artifacts/mlflow",
    "MLFLOW_AUTH_ADMIN_PASSWORD": "correct-horse-battery",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "csrf-signing-key",
}


def test_server_command_has_auth_proxied_artifacts_and_allowed_hosts() -> None:
    config = config_from_environment(
        {**VALID, "MLFLOW_ALLOWED_HOSTS": "mlflow.mlops.svc", "MLFLOW_HOST": "0.0.0.0", "MLFLOW_PORT": "8080"}
    )
    assert build_server_command(config, python="/py") == [
        "/py", "-m", MLFLOW_ENTRYPOINT, "server",
        "--backend-store-uri", VALID["MLFLOW_BACKEND_STORE_URI"],
        "--artifacts-destination", "s3://artifacts/mlflow",
        "--serve-artifacts",
        "--app-name", "basic-auth",
        "--host", "0.0.0.0",
        "--port", "8080",
        "--workers", "2",
        "--allowed-hosts", "mlflow.mlops.svc",
    ]  # fmt: skip
    assert build_migrate_command(config, python="/py") == [
        "/py", "-m", MLFLOW_ENTRYPOINT, "db", "upgrade", VALID["MLFLOW_BACKEND_STORE_URI"],
    ]  # fmt: skip


# Importing mlflow.server maps MLflow's tables, whose `noload` relationships SQLAlchemy 2.1 deprecates.
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")
def test_mlflow_server_starts_its_workers_with_the_platform_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins the one MLflow internal the entrypoint replaces: the app lookup of `mlflow server`."""
    import mlflow.server
    from mlflow.exceptions import MlflowException

    original = mlflow.server._find_app
    monkeypatch.setattr(mlflow.server, "_find_app", original)  # restored after the test
    assert original("basic-auth") == "mlflow.server.auth:create_app"
    serve_platform_app()
    serve_platform_app()  # idempotent
    assert mlflow.server._find_app("basic-auth") == APP_FACTORY
    assert mlflow.server._is_factory(APP_FACTORY), "uvicorn is started with --factory"
    with pytest.raises(MlflowException, match="Failed to find app"):
        mlflow.server._find_app("no-such-app")


def test_defaults_bind_loopback_and_keep_mlflows_host_check() -> None:
    config = config_from_environment(VALID)
    command = build_server_command(config, python="/py")
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5000"
    assert "--allowed-hosts" not in command
    assert config.auth_database_uri == VALID["MLFLOW_BACKEND_STORE_URI"]
    assert config.admin_username == "admin"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"MLFLOW_BACKEND_STORE_URI": ""}, "MLFLOW_BACKEND_STORE_URI is required"),
        ({"MLFLOW_BACKEND_STORE_URI": "mlflow.db"}, "expected a SQLAlchemy URI"),
        ({"MLFLOW_ARTIFACTS_DESTINATION": ""}, "MLFLOW_ARTIFACTS_DESTINATION is required"),
        ({"MLFLOW_AUTH_ADMIN_PASSWORD": ""}, r"^MLFLOW_AUTH_ADMIN_PASSWORD \(or \w+_FILE\) is required"),
        ({"MLFLOW_AUTH_ADMIN_PASSWORD": MLFLOW_LEGACY_DEFAULT_PASSWORD}, "publicly known default password"),
        ({"MLFLOW_AUTH_ADMIN_PASSWORD": "short"}, "at least 12 characters"),
        ({"MLFLOW_FLASK_SERVER_SECRET_KEY": ""}, "MLFLOW_FLASK_SERVER_SECRET_KEY"),
        ({"MLFLOW_PORT": "http"}, "MLFLOW_PORT='http': expected an integer >= 1"),
        ({"MLFLOW_WORKERS": "0"}, "MLFLOW_WORKERS='0': expected an integer >= 1"),
        ({"MLFLOW_AUTH_DEFAULT_PERMISSION": "ADMIN"}, "expected one of READ, EDIT, MANAGE, NO_PERMISSIONS"),
        ({"MLFLOW_AUTH_CACHE_TTL_SECONDS": "-1"}, "expected an integer >= 0"),
    ],
)
def test_bad_configuration_is_refused_with_the_variable_named(override: dict[str, str], message: str) -> None:
    with pytest.raises(TrackingConfigError, match=message):
        config_from_environment({**VALID, **override})


def test_missing_password_is_refused_even_without_the_variable() -> None:
    environment = {key: value for key, value in VALID.items() if key != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    with pytest.raises(TrackingConfigError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        config_from_environment(environment)


def test_secrets_can_come_from_mounted_files(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-a-mounted-secret\n")
    (tmp_path / "user").write_text("platform-admin\n")
    environment = {
        **VALID,
        "MLFLOW_AUTH_ADMIN_PASSWORD": "",
        "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "password"),
        "MLFLOW_AUTH_ADMIN_USERNAME_FILE": str(tmp_path / "user"),
    }
    config = config_from_environment(environment)
    assert (config.admin_username, config.admin_password) == ("platform-admin", "from-a-mounted-secret")
    with pytest.raises(TrackingConfigError, match="cannot read"):
        config_from_environment({**environment, "MLFLOW_AUTH_ADMIN_PASSWORD_FILE": str(tmp_path / "absent")})


def test_auth_config_is_private_and_read_back_by_mlflows_parser(tmp_path: Path) -> None:
    config = config_from_environment({**VALID, "MLFLOW_AUTH_ADMIN_PASSWORD": "100%-not-default"})
    path = write_auth_config(config, directory=tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # MLflow reads the file with ConfigParser's default (interpolating) parser: `%` must survive.
    parsed = configparser.ConfigParser()
    parsed.read(path)
    assert parsed["mlflow"]["admin_password"] == "100%-not-default"
    assert parsed["mlflow"]["database_uri"] == VALID["MLFLOW_BACKEND_STORE_URI"]
    assert parsed["mlflow"]["default_permission"] == "READ"
    assert parsed["mlflow"]["admin_password"] != MLFLOW_LEGACY_DEFAULT_PASSWORD


def test_server_environment_keeps_credentials_out_of_mlflows_variables(tmp_path: Path) -> None:
    config = config_from_environment(VALID)
    environment = server_environment({**VALID, "PATH": "/bin"}, config, tmp_path / "basic_auth.ini")
    assert "MLFLOW_AUTH_ADMIN_PASSWORD" not in environment
    assert environment["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "basic_auth.ini")
    assert environment["MLFLOW_FLASK_SERVER_SECRET_KEY"] == "csrf-signing-key"
    assert environment["PATH"] == "/bin"
    assert environment["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    enabled = server_environment({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}, config, tmp_path / "a.ini")
    assert enabled["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"


def test_entrypoint_exits_2_with_one_line_on_bad_configuration() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workloads.tracking.server", "serve", "--skip-migrate"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tracking server: MLFLOW_BACKEND_STORE_URI is required (e.g. postgresql://user:password@host:5432/mlflow)"
    ]


def test_entrypoint_help_documents_every_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workloads.tracking.server", "--help"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3])},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for variable in (
        "MLFLOW_BACKEND_STORE_URI",
        "MLFLOW_ARTIFACTS_DESTINATION",
        "MLFLOW_ALLOWED_HOSTS",
        "MLFLOW_AUTH_ADMIN_PASSWORD_FILE",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "MLFLOW_DATABASE_SECRET_ARN",
        "--skip-migrate",
    ):
        assert variable in result.stdout
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  MLFLOW_")}
    assert listed == {*TrackingServerConfig.variables(), *DatabaseSecretSettings.variables()}
