"""`mlops local ...`: run platform services on this machine with embedded defaults."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Run platform services on this machine.")


@app.command("tracking")
def tracking(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1 (default: 5000)")] = 5000,
    backend_store_uri: Annotated[
        str | None, typer.Option(help="database URI (default: SQLite at .mlops/tracking/mlflow.db)")
    ] = None,
    artifacts_destination: Annotated[
        str | None, typer.Option(help="artifact store (default: .mlops/tracking/artifacts)")
    ] = None,
    s3_endpoint_url: Annotated[
        str | None, typer.Option(help="S3 API endpoint for an s3:// artifacts destination (e.g. moto)")
    ] = None,
    state_directory: Annotated[
        Path, typer.Option(help="where the database, artifacts, password and log live")
    ] = Path(".mlops/tracking"),
) -> None:
    """Start the MLflow tracking server (basic auth on) and keep it running until Ctrl-C."""
    from workloads.tracking.local import LocalTrackingError, start_local_tracking

    typer.echo("starting the tracking server (first start migrates the database, ~30 s)...")
    try:
        server = start_local_tracking(
            state_directory,
            port=port,
            backend_store_uri=backend_store_uri,
            artifacts_destination=artifacts_destination,
            s3_endpoint_url=s3_endpoint_url,
        )
    except LocalTrackingError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    password_file = state_directory / "admin-password"
    typer.echo(f"MLflow tracking server: {server.url}  (log: {server.log_path})")
    if server.password_created:
        typer.echo(f"admin password (shown once, kept in {password_file}): {server.password}")
    else:
        typer.echo(f"admin password: see {password_file}")
    typer.echo(
        f"export MLFLOW_TRACKING_URI={server.url} MLFLOW_TRACKING_USERNAME={server.username} "
        f'MLFLOW_TRACKING_PASSWORD="$(cat {password_file})"'
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.is_set() and server.process.poll() is None:
            stopped.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    if server.process.returncode not in (0, -signal.SIGTERM, None):
        typer.echo(f"tracking server exited with status {server.process.returncode}", err=True)
        raise typer.Exit(1)
