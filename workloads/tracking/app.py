"""The ASGI app each uvicorn worker serves: MLflow's basic-auth app, plus the platform's two additions.

uvicorn workers are fresh interpreters that import their app by name, so what the `mlflow server`
process installed (mlflow_entrypoint.py) does not reach them: this factory installs the database
credentials hook in the worker before MLflow's app opens its first connection, and answers the
readiness path in front of it.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp

from workloads.tracking.credentials_hook import install_credentials_hook, log_database_events_to_stderr
from workloads.tracking.readiness import DatabaseReadiness, ReadinessRoute
from workloads.tracking.server import TrackingServerVariables

# What `mlflow server --app-name basic-auth` serves; mlflow_entrypoint.py points it here instead.
APP_FACTORY = "workloads.tracking.app:create_app"


def create_app() -> ASGIApp:
    """uvicorn's `--factory` entry: credentials hook, MLflow's basic-auth app, `/readyz` in front."""
    log_database_events_to_stderr()
    install_credentials_hook(os.environ)
    # Not a module-level import: `mlflow server` imports this module only to see that create_app is
    # a factory, and need not load the auth app (and read its configuration) for that.
    from mlflow.server.auth import create_app as create_basic_auth_app

    # Under uvicorn (MLflow sets _MLFLOW_SGI_NAME for its workers) this is MLflow's FastAPI app.
    mlflow_app: ASGIApp = create_basic_auth_app()  # type: ignore[assignment]
    # server.py always passes the backend-store URI in the environment, also when it built it from the secret.
    return ReadinessRoute(mlflow_app, DatabaseReadiness.for_uri(os.environ[TrackingServerVariables.BACKEND_STORE_URI]))
