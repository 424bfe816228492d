"""Entrypoint of the tracking-server image: MLflow with basic auth, a SQL backend and proxied artifacts.

The same module runs in the cluster (as the container's entrypoint), behind `mlops local tracking`
and in the tests, so the three paths cannot drift apart. It reads plain environment variables only;
whoever deploys it (Pulumi, the local launcher, a test fixture) just sets them. `TrackingServerConfig`
declares each one; `--help` lists what it generates. Besides those, MLflow's own
MLFLOW_SERVER_ENABLE_JOB_EXECUTION is passed on, `false` unless set: its background job runner (a Huey
consumer with five workers) serves GenAI features (scorers, trace roll-ups) this platform does not
use. The generated auth config goes to TMPDIR (/tmp): the root file system is read-only in the
cluster and /tmp is an emptyDir.

S3 destinations use the usual AWS variables (IRSA in the cluster; MLFLOW_S3_ENDPOINT_URL with
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for an S3 API on loopback).

Commands:
  python -m workloads.tracking.server [serve] [--skip-migrate]   migrate, then exec `mlflow server`
  python -m workloads.tracking.server migrate                    only `mlflow db upgrade` (a Job)

MLflow runs through mlflow_entrypoint.py, so every process that connects to the database (the
migration, `mlflow server`, each uvicorn worker) takes the password from the secret when it opens a
connection and re-reads the secret when the database rejects it: an RDS password rotation needs no
restart. Besides MLflow's routes the server answers:
  /health    MLflow's own: the server process answers (the startup and liveness probe)
  /readyz    a new database connection opens and answers (the readiness probe; readiness.py)

Configuration errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import field_validator

from workloads.settings import FILE_SUFFIX, HELP_WIDTH, Count, Stripped, Uppercase, WorkloadSettings, variable
from workloads.tracking.database_secret import DatabaseSecretError, DatabaseSecretSettings, backend_uri_from_secret

# Older MLflow releases shipped this as the admin password in basic_auth.ini (GHSA-gq3w-7jj3-x7gr);
# it is public knowledge, so a server using it is as good as unauthenticated.
MLFLOW_LEGACY_DEFAULT_PASSWORD = "password1234"
# MLflow's own password policy (mlflow.utils.validation._validate_password); checked here too so
# the operator gets our one-line message before MLflow starts any worker.
MINIMUM_PASSWORD_LENGTH = 12
Permission = Literal["READ", "EDIT", "MANAGE", "NO_PERMISSIONS"]
PERMISSIONS: tuple[str, ...] = get_args(Permission)
CONFIG_ERROR_EXIT_CODE = 2
# `python -m mlflow` with the database credentials hook and the platform's app (see that module).
MLFLOW_ENTRYPOINT = "workloads.tracking.mlflow_entrypoint"


class TrackingServerVariables:
    """The server's environment variables (`<NAME>_FILE` variants: `workloads.settings.FILE_SUFFIX`)."""

    BACKEND_STORE_URI = "MLFLOW_BACKEND_STORE_URI"
    ARTIFACTS_DESTINATION = "MLFLOW_ARTIFACTS_DESTINATION"
    AUTH_DATABASE_URI = "MLFLOW_AUTH_DATABASE_URI"
    ADMIN_USERNAME = "MLFLOW_AUTH_ADMIN_USERNAME"
    ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"
    FLASK_SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
    DEFAULT_PERMISSION = "MLFLOW_AUTH_DEFAULT_PERMISSION"
    AUTH_CACHE_TTL_SECONDS = "MLFLOW_AUTH_CACHE_TTL_SECONDS"
    ALLOWED_HOSTS = "MLFLOW_ALLOWED_HOSTS"
    HOST = "MLFLOW_HOST"
    PORT = "MLFLOW_PORT"
    WORKERS = "MLFLOW_WORKERS"
    AUTH_CONFIG_PATH = "MLFLOW_AUTH_CONFIG_PATH"
    """Set by this module for `mlflow server`: the generated basic-auth ini."""
    ENABLE_JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
    """MLflow's own, passed on (`false` unless set)."""
    S3_ENDPOINT_URL = "MLFLOW_S3_ENDPOINT_URL"
    """MLflow's own: an S3 API on loopback for s3:// artifacts (with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."""


class TrackingConfigError(ValueError):
    """Configuration the operator must fix; the message names the variable and what was expected."""


def validate_admin_password(password: str | None) -> str:
    """Reject passwords MLflow would reject or that would leave the server effectively open."""
    name = TrackingServerVariables.ADMIN_PASSWORD
    if not password:
        raise TrackingConfigError(f"{name} (or {name}_FILE) is required and must not be empty")
    if password == MLFLOW_LEGACY_DEFAULT_PASSWORD:
        raise TrackingConfigError(f"{name}: refusing MLflow's publicly known default password; set a new one")
    if "\n" in password or "\r" in password or password != password.strip():
        raise TrackingConfigError(f"{name}: must not contain line breaks or leading/trailing spaces")
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        raise TrackingConfigError(f"{name}: must be at least {MINIMUM_PASSWORD_LENGTH} characters")
    return password


class TrackingServerConfig(WorkloadSettings):
    """Everything needed to start the tracking server, parsed once from the environment."""

    error_class = TrackingConfigError

    backend_store_uri: Stripped = variable(
        TrackingServerVariables.BACKEND_STORE_URI,
        pattern="://",
        examples=["postgresql://user:password@host:5432/mlflow"],
        expected="a SQLAlchemy URI such as postgresql://... or sqlite:///...",
    )
    """SQLAlchemy URI of the tracking and registry database, e.g. sqlite:////abs/mlflow.db; built from the
    database's secret (below) when unset"""
    artifacts_destination: Stripped = variable(
        TrackingServerVariables.ARTIFACTS_DESTINATION, examples=["s3://bucket/mlflow", "an absolute path"]
    )
    """where the server stores the artifacts it proxies"""
    requested_auth_database_uri: Stripped = variable(
        TrackingServerVariables.AUTH_DATABASE_URI, "", default_text=TrackingServerVariables.BACKEND_STORE_URI
    )
    """database of the basic-auth users; MLflow keeps its own tables and alembic version table there"""
    admin_username: Stripped = variable(TrackingServerVariables.ADMIN_USERNAME, "admin", from_file=True)
    """admin user created on first start"""
    admin_password: str = variable(
        TrackingServerVariables.ADMIN_PASSWORD,
        description=f"admin password, at least {MINIMUM_PASSWORD_LENGTH} characters, never MLflow's historical "
        f"default `{MLFLOW_LEGACY_DEFAULT_PASSWORD}`",
        repr=False,
        from_file=True,
    )
    flask_secret_key: Stripped = variable(TrackingServerVariables.FLASK_SECRET_KEY, repr=False, from_file=True)
    """key signing the basic-auth app's CSRF tokens; the same value on every replica"""
    default_permission: Annotated[Permission, Uppercase] = variable(TrackingServerVariables.DEFAULT_PERMISSION, "READ")
    """permission every authenticated user has on resources they did not create"""
    auth_cache_ttl_seconds: int = variable(TrackingServerVariables.AUTH_CACHE_TTL_SECONDS, 30, ge=0)
    """how long a worker trusts a verified username/password (0: never). MLflow's default (0) re-derives the
    scrypt hash on every request, ~0.16 s of CPU each, which caps a worker at a few requests per second; the
    cost is that a password changed through another worker stays valid there for up to this long"""
    allowed_hosts: Stripped | None = variable(
        TrackingServerVariables.ALLOWED_HOSTS, None, default_text="MLflow's: localhost and private IPs"
    )
    """comma-separated Host headers the server answers; set it to the Service / ingress name"""
    host: Stripped = variable(TrackingServerVariables.HOST, "127.0.0.1")
    """interface to bind; the image sets 0.0.0.0"""
    port: int = variable(TrackingServerVariables.PORT, 5000, ge=1)
    """port to listen on"""
    workers: Count = variable(TrackingServerVariables.WORKERS, 2)
    """uvicorn workers"""

    @field_validator("admin_password")
    @classmethod
    def _strong_password(cls, password: str) -> str:
        return validate_admin_password(password)

    @property
    def auth_database_uri(self) -> str:
        """SQLAlchemy URI of the basic-auth user database (by default the backend's)."""
        return self.requested_auth_database_uri or self.backend_store_uri


def config_from_environment(environ: Mapping[str, str]) -> TrackingServerConfig:
    """Parse and validate the documented environment variables; raise TrackingConfigError on bad input."""
    return TrackingServerConfig.from_environment(environ)


def render_auth_config(config: TrackingServerConfig) -> str:
    """The basic-auth ini MLflow reads from MLFLOW_AUTH_CONFIG_PATH.

    MLflow parses it with ConfigParser's default interpolation, so a literal `%` (common in
    URL-encoded database passwords) must be written as `%%`.
    """
    values = {
        "default_permission": config.default_permission,
        "database_uri": config.auth_database_uri,
        "admin_username": config.admin_username,
        "admin_password": config.admin_password,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "auth_cache_ttl_seconds": str(config.auth_cache_ttl_seconds),
    }
    lines = ["[mlflow]"] + [f"{key} = {value.replace('%', '%%')}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_auth_config(config: TrackingServerConfig, directory: Path | None = None) -> Path:
    """Write the auth ini, readable by this user only, into a fresh temporary directory."""
    target_directory = Path(tempfile.mkdtemp(prefix="mlflow-auth-", dir=directory))
    path = target_directory / "basic_auth.ini"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render_auth_config(config))
    return path


def build_migrate_command(config: TrackingServerConfig, python: str = sys.executable) -> list[str]:
    """`mlflow db upgrade`: brings an existing database to this MLflow version's schema."""
    return [python, "-m", MLFLOW_ENTRYPOINT, "db", "upgrade", config.backend_store_uri]


def build_server_command(config: TrackingServerConfig, python: str = sys.executable) -> list[str]:
    """The `mlflow server` command line; pure so tests can assert every flag."""
    command = [
        python,
        "-m",
        MLFLOW_ENTRYPOINT,
        "server",
        "--backend-store-uri",
        config.backend_store_uri,
        "--artifacts-destination",
        config.artifacts_destination,
        "--serve-artifacts",
        "--app-name",
        "basic-auth",
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--workers",
        str(config.workers),
    ]
    if config.allowed_hosts:
        command += ["--allowed-hosts", config.allowed_hosts]
    return command


def server_environment(
    environ: Mapping[str, str], config: TrackingServerConfig, auth_config_path: Path
) -> dict[str, str]:
    """Environment of `mlflow server`: the caller's, pointed at the generated auth config."""
    environment = dict(environ)
    # The *_FILE variants are ours, not MLflow's. The admin credentials travel in the 0600 ini only
    # (MLflow would prefer its own variables over the ini, so they are removed to avoid a mismatch).
    for name in TrackingServerConfig.file_variables():
        environment.pop(name + FILE_SUFFIX, None)
        environment.pop(name, None)
    environment[TrackingServerVariables.AUTH_CONFIG_PATH] = str(auth_config_path)
    environment[TrackingServerVariables.FLASK_SECRET_KEY] = config.flask_secret_key
    environment.setdefault(TrackingServerVariables.ENABLE_JOB_EXECUTION, "false")
    return environment


def migrate(config: TrackingServerConfig, environ: Mapping[str, str]) -> int:
    """Run the schema migration in a child process and return its exit status.

    The child needs the MLFLOW_DATABASE_* variables of `environ`: the URI built from the secret
    carries no password, the child's credentials hook supplies it.
    """
    return subprocess.run(build_migrate_command(config), env=dict(environ), check=False).returncode


def _variables_epilog() -> str:
    return (
        "environment variables:\n"
        + TrackingServerConfig.variables_help(indent="  ", width=HELP_WIDTH)
        + f"\n\nthe database's RDS-managed secret, when {TrackingServerVariables.BACKEND_STORE_URI} is not set:\n"
        + DatabaseSecretSettings.variables_help(indent="  ", width=HELP_WIDTH)
    )


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.tracking.server",
        description=__doc__,
        epilog=_variables_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="migrate the database (unless --skip-migrate), then serve")
    serve.add_argument(
        "--skip-migrate",
        action="store_true",
        help="do not run `mlflow db upgrade` first (the cluster runs `migrate` once as a Job)",
    )
    commands.add_parser("migrate", help=f"only run `mlflow db upgrade` on {TrackingServerVariables.BACKEND_STORE_URI}")
    # `serve` is the default so the bare module is the image's entrypoint.
    parser.set_defaults(command="serve", skip_migrate=False)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Validate the configuration, migrate, then replace this process with `mlflow server`."""
    arguments = _parse_arguments(argv)
    environment = dict(os.environ if environ is None else environ)
    try:
        if not environment.get(TrackingServerVariables.BACKEND_STORE_URI, "").strip():
            from_secret = backend_uri_from_secret(environment)
            if from_secret is not None:
                environment[TrackingServerVariables.BACKEND_STORE_URI] = from_secret
        config = config_from_environment(environment)
    except (TrackingConfigError, DatabaseSecretError) as error:
        print(f"tracking server: {error}", file=sys.stderr)
        return CONFIG_ERROR_EXIT_CODE
    if arguments.command == "migrate" or not arguments.skip_migrate:
        status = migrate(config, environment)
        if status != 0:
            print(f"tracking server: `mlflow db upgrade` failed with exit status {status}", file=sys.stderr)
            return status
        if arguments.command == "migrate":
            return 0
    auth_config_path = write_auth_config(config)
    command = build_server_command(config)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec, not a child: signals from the kubelet / the local launcher reach MLflow directly.
    os.execve(command[0], command, server_environment(environment, config, auth_config_path))
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main())
