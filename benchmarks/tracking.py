"""How fast metrics reach a PostgreSQL-backed tracking server, and what logging costs a training loop.

Starts its own services (a fresh database on the PostgreSQL of MLOPS_TEST_POSTGRES_URI, default
postgresql://mlops:mlops@127.0.0.1:5432/mlops, started by `.ci/services`, and an MLflow server through
`start_local_tracking`) and prints ratios measured in this one run:

  1. metrics per second: one synchronous request per metric, `log_batch` of 1000 metrics per request,
     and the helper's asynchronous `log_metric` (time until `flush()` returns);
  2. the slow-down of a small CNN's training step when each step also logs three metrics through
     the helper (goal: <= 2 %).

    PYTHONPATH=. .venv/bin/python benchmarks/tracking.py [--steps 300]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import mlflow
import psycopg
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from psycopg import sql
from torch import nn

from workloads.tracking.instrument import tracked_run
from workloads.tracking.local import start_local_tracking

DEFAULT_POSTGRES_URI = "postgresql://mlops:mlops@127.0.0.1:5432/mlops"


class SmallCnn(nn.Module):
    """A digits-sized CNN: two convolutions and a linear head on 1x28x28 images."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 7 * 7, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1))


def metrics_per_second_synchronous(run_id: str, count: int) -> float:
    client = MlflowClient()
    start = time.perf_counter()
    for step in range(count):
        client.log_metric(run_id, "sync", float(step), step=step)
    return count / (time.perf_counter() - start)


def metrics_per_second_batched(run_id: str, count: int, batch_size: int = 1000) -> float:
    client = MlflowClient()
    timestamp = int(time.time() * 1000)
    start = time.perf_counter()
    for offset in range(0, count, batch_size):
        metrics = [Metric("batched", float(step), timestamp, step) for step in range(offset, offset + batch_size)]
        client.log_batch(run_id, metrics=metrics)
    return count / (time.perf_counter() - start)


def metrics_per_second_helper(count: int) -> tuple[float, float]:
    """(metrics/s until flush returns, microseconds per log_metric call in the caller's thread)."""
    with tracked_run(experiment="benchmark-async") as run:
        start = time.perf_counter()
        for step in range(count):
            run.log_metric("async", float(step), step)
        queued = time.perf_counter()
        run.flush()
        end = time.perf_counter()
    return count / (end - start), (queued - start) / count * 1e6


def training_overhead(steps: int, repeats: int) -> tuple[float, float, float, float]:
    """Median step time without and with logging (s), median of paired ratios, share of helper calls.

    Plain and logging blocks alternate and each logging block is compared with the plain block just
    before it, so drift in machine load (other processes, the local server) hits both sides alike.
    """
    torch.manual_seed(0)
    model = SmallCnn()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    images = torch.randn(64, 1, 28, 28)
    labels = torch.randint(0, 10, (64,))

    def step_once() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss

    for _ in range(20):  # warm-up: allocator, kernels
        step_once()
    plain: list[float] = []
    logged: list[float] = []
    in_helper = 0.0  # seconds the training thread spends inside the helper's calls
    with tracked_run(experiment="benchmark-training") as run:
        global_step = 0
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                step_once()
            plain.append((time.perf_counter() - start) / steps)

            start = time.perf_counter()
            for _ in range(steps):
                loss = step_once().item()
                entered = time.perf_counter()
                run.log_metric("loss", loss, global_step)
                run.log_metric("learning_rate", 0.01, global_step)
                run.log_metric("grad_norm", 1.0, global_step)
                in_helper += time.perf_counter() - entered
                global_step += 1
            logged.append((time.perf_counter() - start) / steps)
        run.flush()
    ratios = [with_logging / without for without, with_logging in zip(plain, logged, strict=True)]
    helper_share = in_helper / (sum(logged) * steps)
    return statistics.median(plain), statistics.median(logged), statistics.median(ratios), helper_share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sync-metrics", type=int, default=200)
    parser.add_argument("--batched-metrics", type=int, default=20000)
    parser.add_argument("--async-metrics", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=100, help="training steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="alternating plain/logging blocks")
    arguments = parser.parse_args()

    admin_uri = os.environ.get("MLOPS_TEST_POSTGRES_URI", DEFAULT_POSTGRES_URI)
    database = f"mlops_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_uri, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    server = None
    try:
        server = start_local_tracking(
            Path(tempfile.mkdtemp(prefix="mlops-bench-")),
            backend_store_uri=f"{admin_uri.rpartition('/')[0]}/{database}",
        )
        os.environ.update(server.client_environment())
        print(f"server: {server.url} (PostgreSQL database {database}, 1 worker, auth on)")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")

        with mlflow.start_run(experiment_id=mlflow.create_experiment(f"benchmark-{uuid.uuid4().hex[:6]}")) as run:
            run_id = run.info.run_id
            synchronous = metrics_per_second_synchronous(run_id, arguments.sync_metrics)
            batched = metrics_per_second_batched(run_id, arguments.batched_metrics)
        asynchronous, call_microseconds = metrics_per_second_helper(arguments.async_metrics)

        print("\nmetrics per second (higher is better)")
        print(f"  synchronous, one request per metric : {synchronous:10.1f}")
        print(f"  log_batch, 1000 metrics per request : {batched:10.1f}   ({batched / synchronous:.0f}x synchronous)")
        print(
            f"  helper async log_metric + flush     : {asynchronous:10.1f}   ({asynchronous / synchronous:.0f}x "
            f"synchronous; {call_microseconds:.0f} µs per call in the training thread)"
        )

        plain, logged, ratio, helper_share = training_overhead(arguments.steps, arguments.repeats)
        print("\ntraining step of a small CNN (batch 64, 1x28x28), 3 metrics logged per step via the helper")
        print(f"  without logging : {plain * 1e3:8.2f} ms/step")
        print(f"  with logging    : {logged * 1e3:8.2f} ms/step")
        print(f"  slow-down       : {(ratio - 1) * 100:+8.2f} %   (wall clock, median of paired blocks; goal <= 2 %)")
        print(
            f"  in helper calls : {helper_share * 100:8.2f} %   of the logged step time (the client-side cost; the\n"
            "                    rest of the slow-down is CPU taken by the server and PostgreSQL on this machine)"
        )
        print(f"\nload average after the run: {os.getloadavg()[0]:.1f} (timings are only comparable within one run)")
    finally:
        if server is not None:
            server.stop()
        with psycopg.connect(admin_uri, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
