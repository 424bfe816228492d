"""Entrypoint of the tracking-server image: MLflow with basic auth, a SQL backend and proxied artifacts.

The same module runs in the cluster (as the container's entrypoint), behind `mlops local tracking`
and in the tests, so the three paths cannot drift apart. It reads plain environment variables only;
whoever deploys it (Pulumi, the local launcher, a test fixture) just sets them.

Environment variables (default in brackets):

  MLFLOW_BACKEND_STORE_URI        [required, unless built from MLFLOW_DATABASE_SECRET_ARN and
                                  MLFLOW_DATABASE_HOST/PORT/NAME: see database_secret.py]
                                  SQLAlchemy URI of the tracking and registry database,
                                  e.g. postgresql://user:pw@host:5432/mlflow or sqlite:////abs/mlflow.db
  MLFLOW_ARTIFACTS_DESTINATION    [required] where the server stores artifacts it proxies,
                                  e.g. s3://bucket/mlflow or /abs/path/artifacts
  MLFLOW_AUTH_DATABASE_URI        [MLFLOW_BACKEND_STORE_URI] database of the basic-auth users; MLflow
                                  keeps its own tables and alembic version table there
  MLFLOW_AUTH_ADMIN_USERNAME      [admin] admin user created on first start
  MLFLOW_AUTH_ADMIN_USERNAME_FILE [unset] file holding the admin user name (a mounted Secret)
  MLFLOW_AUTH_ADMIN_PASSWORD      [required unless *_FILE] admin password, at least 12 characters,
                                  never MLflow's historical default `password1234`
  MLFLOW_AUTH_ADMIN_PASSWORD_FILE [unset] file holding the admin password (a mounted Secret)
  MLFLOW_FLASK_SERVER_SECRET_KEY  [required unless *_FILE] key signing the basic-auth app's CSRF tokens;
                                  the same value on every replica
  MLFLOW_FLASK_SERVER_SECRET_KEY_FILE [unset] file holding that key (a mounted Secret)
  MLFLOW_AUTH_DEFAULT_PERMISSION  [READ] permission every authenticated user has on resources they
                                  did not create (READ, EDIT, MANAGE or NO_PERMISSIONS)
  MLFLOW_AUTH_CACHE_TTL_SECONDS   [30] how long a worker trusts a verified username/password. MLflow's
                                  default (0) re-derives the scrypt hash on every request, ~0.16 s of
                                  CPU each, which caps a worker at a few requests per second; the cost
                                  is that a password changed through another worker stays valid there
                                  for up to this long
  MLFLOW_ALLOWED_HOSTS            [unset = MLflow's default: localhost and private IPs] comma-separated
                                  Host headers the server answers; set it to the Service / ingress name
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION [false] MLflow's background job runner (a Huey consumer with five
                                  workers) serves GenAI features (scorers, trace roll-ups) this
                                  platform does not use; MLflow's own default is true
  MLFLOW_HOST                     [127.0.0.1] interface to bind; the image sets 0.0.0.0
  MLFLOW_PORT                     [5000] port to listen on
  MLFLOW_WORKERS                  [2] uvicorn worker processes
  TMPDIR                          [/tmp] where the generated auth config is written: the root file
                                  system is read-only in the cluster and /tmp is an emptyDir

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
from dataclasses import dataclass
from pathlib import Path

from workloads.tracking.database_secret import DatabaseSecretError, backend_uri_from_secret

# Older MLflow releases shipped this as the admin password in basic_auth.ini (GHSA-gq3w-7jj3-x7gr);
# it is public knowledge, so a server using it is as good as unauthenticated.
MLFLOW_LEGACY_DEFAULT_PASSWORD = "password1234"
# MLflow's own password policy (mlflow.utils.validation._validate_password); checked here too so
# the operator gets our one-line message before MLflow starts any worker.
MINIMUM_PASSWORD_LENGTH = 12
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")
CONFIG_ERROR_EXIT_CODE = 2
# `python -m mlflow` with the database credentials hook and the platform's app (see that module).
MLFLOW_ENTRYPOINT = "workloads.tracking.mlflow_entrypoint"


class TrackingConfigError(ValueError):
    """Configuration the operator must fix; the message names the variable and what was expected."""


@dataclass(frozen=True)
class TrackingServerConfig:
    """Everything needed to start the tracking server, parsed once from the environment."""

    backend_store_uri: str
    """SQLAlchemy URI of the tracking + registry database."""
    artifacts_destination: str
    """Where proxied artifacts are stored (s3://... or a local path)."""
    auth_database_uri: str
    """SQLAlchemy URI of the basic-auth user database."""
    admin_username: str
    """Admin user created on first start."""
    admin_password: str
    """Admin password; validated against emptiness, length and MLflow's legacy default."""
    flask_secret_key: str
    """Signs CSRF tokens of the auth app; must be identical across replicas."""
    default_permission: str = "READ"
    """Permission of authenticated users on resources they do not own."""
    auth_cache_ttl_seconds: int = 30
    """How long a verified credential is cached per worker (0 disables the cache)."""
    allowed_hosts: str | None = None
    """Comma-separated Host headers the server accepts; None keeps MLflow's default."""
    host: str = "127.0.0.1"
    """Interface to bind."""
    port: int = 5000
    """Port to listen on."""
    workers: int = 2
    """Number of uvicorn workers."""


def _read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """Return `name` or the content of the file named by `name_FILE` (a mounted Secret)."""
    file_variable = f"{name}_FILE"
    if environ.get(file_variable):
        path = Path(environ[file_variable])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise TrackingConfigError(f"{file_variable}: cannot read {path}: {error.strerror}") from error
    return environ.get(name)


def _integer(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    expected = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    try:
        value = int(raw)
    except ValueError:
        raise TrackingConfigError(f"{name}: expected {expected}, got {raw!r}") from None
    if value < minimum:
        raise TrackingConfigError(f"{name}: expected {expected}, got {raw!r}")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _integer(environ, name, default, minimum=1)


def _non_negative_int(environ: Mapping[str, str], name: str, default: int) -> int:
    return _integer(environ, name, default, minimum=0)


def validate_admin_password(password: str | None) -> str:
    """Reject passwords MLflow would reject or that would leave the server effectively open."""
    if not password:
        raise TrackingConfigError(
            "MLFLOW_AUTH_ADMIN_PASSWORD (or MLFLOW_AUTH_ADMIN_PASSWORD_FILE) is required and must not be empty"
        )
    if password == MLFLOW_LEGACY_DEFAULT_PASSWORD:
        raise TrackingConfigError(
            "MLFLOW_AUTH_ADMIN_PASSWORD: refusing MLflow's publicly known default password; set a new one"
        )
    if "\n" in password or "\r" in password or password != password.strip():
        raise TrackingConfigError("MLFLOW_AUTH_ADMIN_PASSWORD: must not contain line breaks or leading/trailing spaces")
    if len(password) < MINIMUM_PASSWORD_LENGTH:
        raise TrackingConfigError(f"MLFLOW_AUTH_ADMIN_PASSWORD: must be at least {MINIMUM_PASSWORD_LENGTH} characters")
    return password


def config_from_environment(environ: Mapping[str, str]) -> TrackingServerConfig:
    """Parse and validate the documented environment variables; raise TrackingConfigError on bad input."""
    backend_store_uri = environ.get("MLFLOW_BACKEND_STORE_URI", "").strip()
    if not backend_store_uri:
        raise TrackingConfigError(
            "MLFLOW_BACKEND_STORE_URI is required (e.g. postgresql://user:password@host:5432/mlflow)"
        )
    if "://" not in backend_store_uri:
        raise TrackingConfigError(
            f"MLFLOW_BACKEND_STORE_URI: expected a SQLAlchemy URI such as postgresql://... or "
            f"sqlite:///..., got {backend_store_uri!r}"
        )
    artifacts_destination = environ.get("MLFLOW_ARTIFACTS_DESTINATION", "").strip()
    if not artifacts_destination:
        raise TrackingConfigError(
            "MLFLOW_ARTIFACTS_DESTINATION is required (e.g. s3://bucket/mlflow or an absolute path)"
        )
    default_permission = environ.get("MLFLOW_AUTH_DEFAULT_PERMISSION", "READ").strip().upper()
    if default_permission not in PERMISSIONS:
        raise TrackingConfigError(
            f"MLFLOW_AUTH_DEFAULT_PERMISSION: expected one of {', '.join(PERMISSIONS)}, got {default_permission!r}"
        )
    admin_username = (_read_secret(environ, "MLFLOW_AUTH_ADMIN_USERNAME") or "admin").strip()
    admin_password = validate_admin_password(_read_secret(environ, "MLFLOW_AUTH_ADMIN_PASSWORD"))
    flask_secret_key = (_read_secret(environ, "MLFLOW_FLASK_SERVER_SECRET_KEY") or "").strip()
    if not flask_secret_key:
        raise TrackingConfigError(
            "MLFLOW_FLASK_SERVER_SECRET_KEY (or MLFLOW_FLASK_SERVER_SECRET_KEY_FILE) is required: the "
            "basic-auth app signs CSRF tokens with it"
        )
    allowed_hosts = environ.get("MLFLOW_ALLOWED_HOSTS", "").strip() or None
    return TrackingServerConfig(
        backend_store_uri=backend_store_uri,
        artifacts_destination=artifacts_destination,
        auth_database_uri=environ.get("MLFLOW_AUTH_DATABASE_URI", "").strip() or backend_store_uri,
        admin_username=admin_username,
        admin_password=admin_password,
        flask_secret_key=flask_secret_key,
        auth_cache_ttl_seconds=_non_negative_int(environ, "MLFLOW_AUTH_CACHE_TTL_SECONDS", 30),
        default_permission=default_permission,
        allowed_hosts=allowed_hosts,
        host=environ.get("MLFLOW_HOST", "").strip() or "127.0.0.1",
        port=_positive_int(environ, "MLFLOW_PORT", 5000),
        workers=_positive_int(environ, "MLFLOW_WORKERS", 2),
    )


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
    for name in (
        "MLFLOW_AUTH_ADMIN_USERNAME",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
    ):
        environment.pop(f"{name}_FILE", None)
        environment.pop(name, None)
    environment["MLFLOW_AUTH_CONFIG_PATH"] = str(auth_config_path)
    environment["MLFLOW_FLASK_SERVER_SECRET_KEY"] = config.flask_secret_key
    environment.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return environment


def migrate(config: TrackingServerConfig, environ: Mapping[str, str]) -> int:
    """Run the schema migration in a child process and return its exit status.

    The child needs the MLFLOW_DATABASE_* variables of `environ`: the URI built from the secret
    carries no password, the child's credentials hook supplies it.
    """
    return subprocess.run(build_migrate_command(config), env=dict(environ), check=False).returncode


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workloads.tracking.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="migrate the database (unless --skip-migrate), then serve")
    serve.add_argument(
        "--skip-migrate",
        action="store_true",
        help="do not run `mlflow db upgrade` first (the cluster runs `migrate` once as a Job)",
    )
    commands.add_parser("migrate", help="only run `mlflow db upgrade` on MLFLOW_BACKEND_STORE_URI")
    # `serve` is the default so the bare module is the image's entrypoint.
    parser.set_defaults(command="serve", skip_migrate=False)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Validate the configuration, migrate, then replace this process with `mlflow server`."""
    arguments = _parse_arguments(argv)
    environment = dict(os.environ if environ is None else environ)
    try:
        if not environment.get("MLFLOW_BACKEND_STORE_URI", "").strip():
            from_secret = backend_uri_from_secret(environment)
            if from_secret is not None:
                environment["MLFLOW_BACKEND_STORE_URI"] = from_secret
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
