"""`python -m mlflow`, with the platform's database credentials hook and app.

    python -m workloads.tracking.mlflow_entrypoint server ...      instead of `mlflow server ...`
    python -m workloads.tracking.mlflow_entrypoint db upgrade URI  instead of `mlflow db upgrade URI`

server.py runs MLflow through this module for two reasons:
  * the `mlflow server` process itself connects before it starts any worker (it creates the admin
    user and checks the schema), and `mlflow db upgrade` connects too: both need the credentials
    hook (credentials_hook.py) installed in-process;
  * `--app-name basic-auth` makes MLflow start uvicorn with `mlflow.server.auth:create_app`; the
    workers must serve workloads/tracking/app.py's factory instead, which wraps that same app.
    MLflow takes the app's import path from its `mlflow.app` entry points, through
    `mlflow.server._find_app`; replacing that one lookup here is the narrowest hook MLflow 3.17
    offers (registering an entry point would need this repository installed as a package in the
    image). Everything else `mlflow server` does (stores, artifact settings, the admin bootstrap,
    signal forwarding) stays MLflow's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from workloads.tracking.app import APP_FACTORY
from workloads.tracking.credentials_hook import install_credentials_hook

BASIC_AUTH_APP = "basic-auth"


class UnsupportedMlflowError(RuntimeError):
    """The installed MLflow no longer has the lookup this module replaces."""


def serve_platform_app() -> None:
    """Make `mlflow server --app-name basic-auth` start workers with APP_FACTORY."""
    import mlflow.server

    original = getattr(mlflow.server, "_find_app", None)
    if original is None:
        raise UnsupportedMlflowError(
            f"mlflow {mlflow.__version__} has no mlflow.server._find_app: the tracking server cannot "
            "install its database credentials hook in the uvicorn workers (see mlflow_entrypoint.py)"
        )
    if original.__module__ == __name__:
        return  # already replaced in this process

    def find_app(app_name: str) -> str:
        return APP_FACTORY if app_name == BASIC_AUTH_APP else original(app_name)

    mlflow.server._find_app = find_app


def main(argv: Sequence[str] | None = None) -> None:
    """Run MLflow's command line with the hook and app in place; exits like `mlflow` does."""
    install_credentials_hook(os.environ)
    serve_platform_app()
    from mlflow.cli import cli

    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="mlflow")


if __name__ == "__main__":
    main()
