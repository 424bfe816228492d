"""`mlops local ...`: run platform services on this machine with embedded defaults."""

from __future__ import annotations

import functools
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import INTERRUPTED_EXIT_CODE, RUN_FAILED_EXIT_CODE, fail
from workloads.settings import TrackingClientVariables

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
    state_directory: Annotated[Path, typer.Option(help="where the database, artifacts, password and log live")] = Path(
        ".mlops/tracking"
    ),
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
        fail(str(error), code=RUN_FAILED_EXIT_CODE)
    password_file = state_directory / "admin-password"
    typer.echo(f"MLflow tracking server: {server.url}  (log: {server.log_path})")
    if server.password_created:
        typer.echo(f"admin password (shown once, kept in {password_file}): {server.password}")
    else:
        typer.echo(f"admin password: see {password_file}")
    typer.echo(
        f"export {TrackingClientVariables.URI}={server.url} {TrackingClientVariables.USERNAME}={server.username} "
        f'{TrackingClientVariables.PASSWORD}="$(cat {password_file})"'
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
        fail(f"exited with status {server.process.returncode}", code=RUN_FAILED_EXIT_CODE, label="tracking server")


ModelsOption = Annotated[
    list[str] | None,
    typer.Option("--model", help="catalogue model to run (repeat the option; default: every catalogue model)"),
]


@app.command("up")
def up(
    models: ModelsOption = None,
    keep: Annotated[bool, typer.Option("--keep", help="leave the tracking server and services running")] = False,
    tracking_port: Annotated[int, typer.Option(help="tracking server port on 127.0.0.1 (0: any free port)")] = 5000,
    service_port: Annotated[
        int, typer.Option(help="first model service's port; the next model gets the next one (0: free ports)")
    ] = 3000,
    backend_store_uri: Annotated[
        str | None, typer.Option(help="tracking database URI (default: SQLite under STATE/tracking)")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            help="override the catalogue's epochs of the initial training (the retrain on labelled data keeps them)"
        ),
    ] = None,
    state_directory: Annotated[
        Path, typer.Option(help="where the registry, datasets, pipelines, logs and reports live")
    ] = Path(".mlops"),
) -> None:
    """The whole loop on this machine: train, gate and promote each model, serve it, replay a normal and a
    drifted day of traffic, run the drift jobs (alert + retrain), print where everything is."""
    from cli.local_loop import LoopError, LoopOptions, describe, run_loop
    from workloads import catalogue

    if epochs is not None and epochs < 1:
        fail(f"--epochs must be >= 1, got {epochs}")
    chosen = list(dict.fromkeys(models)) if models else list(catalogue.names())
    for option, port, count in (("--tracking-port", tracking_port, 1), ("--service-port", service_port, len(chosen))):
        if port and not 1 <= port <= 65536 - count:
            fail(f"{option} must be 0 (any free port) or 1-{65536 - count}, got {port}")
    for model in chosen:
        try:
            catalogue.get(model)
        except catalogue.UnknownModelError as error:
            fail(str(error))
    options = LoopOptions(
        models=tuple(chosen),
        state_directory=state_directory,
        tracking_port=tracking_port,
        service_port=service_port,
        backend_store_uri=backend_store_uri,
        epochs=epochs,
        keep=keep,
    )
    # Bound to the terminal now: pipeline runs redirect sys.stdout to their log while progress goes on.
    echo = functools.partial(typer.echo, file=sys.stdout)
    try:
        result = run_loop(options, echo)
    except (LoopError, OSError) as error:  # OSError: e.g. a state directory that cannot be written
        fail(str(error), code=RUN_FAILED_EXIT_CODE)
    except KeyboardInterrupt:
        fail("stopped what the loop had started", code=INTERRUPTED_EXIT_CODE, label="interrupted")
    typer.echo(describe(result))
    if result.problems:
        fail(*result.problems, code=RUN_FAILED_EXIT_CODE)


@app.command("down")
def down(
    state_directory: Annotated[Path, typer.Option(help="state directory given to `mlops local up`")] = Path(".mlops"),
) -> None:
    """Stop the platform `mlops local up --keep` left running (SIGTERM: services flush their prediction logs)."""
    from cli.local_state import stop_kept

    try:
        stopped = stop_kept(state_directory.resolve())
    except ValueError as error:
        fail(str(error), code=RUN_FAILED_EXIT_CODE)
    if not stopped:
        typer.echo(f"nothing to stop: no kept platform is running for {state_directory}")
        return
    for server in stopped:
        typer.echo(f"stopped {server.name} ({server.url})")
