"""Serving and training on one device: raw batched forward vs the served model vs Flask, on a GPU.

Starts its own tracking server (SQLite in a temporary folder), registers a ResNet-18-sized and a
ResNet-50-sized network (random weights, 1x224x224, benchmarks/networks.py)
through the platform's own code and prints, for each, at each concurrency (default 32 and 64), all on
the device MLOPS_DEVICE names (`--device`, default cuda):

  (a) raw: batched forward passes of the loaded model (`Placement.forward`: pinned host batch,
      non-blocking copy, inference mode, softmax back on the host), batches of the service's maximum
      size, K at a time as the service runs them — the limit;
  (b) served: a real `bentoml serve` (adaptive batching, K batches in the model at once) under C
      concurrent clients posting PNG files over loopback HTTP;
  (c) Flask: benchmarks/flask_baseline.py behind gunicorn, the model on the same device, one forward
      of batch 1 per request, under the same load;

measured in interleaved rounds so that outside load falls on all three alike, with throughput,
per-request (per-batch for (a)) p50/p99, errors, and the ratios (b)/(a) and (b)/(c) (goals on a GPU:
>= 0.9 and >= 3). Then training throughput (images/s) of the GPU catalogue model (surface-defects,
its catalogue hyper-parameters) on the device and on the CPU, with the validation accuracy of both
(mixed precision must keep it) and of float16 / channels-last inference (MLOPS_HALF_PRECISION and
MLOPS_CHANNELS_LAST may be turned on only where they stay within 0.1 point); and finally the serving
tests, run with MLOPS_DEVICE set to the device.

    python benchmarks/gpu_serving.py                        # on a GPU: sized for under 8 minutes
    python benchmarks/gpu_serving.py --device cpu --quick   # CPU mode: the whole path, in minutes
    python -m benchmarks.gpu_serving --json results.json    # the figures as JSON as well

benchmarks/device_check.sh is the prepared run for a machine with a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Run as a script, only benchmarks/ is on the path: the checkout's packages come from its root.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from benchmarks.networks import RESNET50_ENTRY, ResNet18, ResNet50  # noqa: E402
from benchmarks.serving import (  # noqa: E402
    RESNET_ENTRY,
    Measurement,
    drive_load,
    png,
    raw_batches,
    row,
    start_flask,
    stop,
)
from workloads.catalogue_entry import CatalogueEntry  # noqa: E402
from workloads.serving.settings import ServingVariables  # noqa: E402

NETWORKS = (
    (RESNET_ENTRY, ResNet18, "benchmarks.serving:RESNET_ENTRY"),
    (RESNET50_ENTRY, ResNet50, "benchmarks.networks:RESNET50_ENTRY"),
)
SERVING_TESTS = ("tests/workloads/serving", "tests/workloads/test_training_batches.py")
QUICK_SERVING_TESTS = (
    "tests/workloads/serving/test_service.py",
    "tests/workloads/serving/test_device.py",
    "tests/workloads/test_training_batches.py",
)


@dataclass(frozen=True)
class Plan:
    """What this run measures, from the command line."""

    device: str
    quick: bool
    seconds: float
    """Measurement per configuration and concurrency, split into interleaved rounds."""
    concurrencies: tuple[int, ...]
    max_batch: int | None
    """The service's MLOPS_MAX_BATCH_SIZE (None: its default for 224x224, sized for a CPU)."""
    concurrent_batches: int
    torch_threads: int
    client_processes: int
    """Load-generator processes: one Python client tops out well below a GPU service's rate."""
    tests: bool

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")


def parse_plan(argv: list[str] | None = None) -> tuple[Plan, Path | None]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N (MLOPS_DEVICE of (a), (b), (c))")
    parser.add_argument("--quick", action="store_true", help="short windows, concurrency 4 and 8, fewer tests")
    parser.add_argument("--seconds", type=float, help="measurement per configuration (default 6, quick 6)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="concurrent clients (default 32 64, quick 4 8)")
    parser.add_argument("--max-batch", type=int, help="MLOPS_MAX_BATCH_SIZE (default 32 on a GPU)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the serving tests at the end")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    arguments = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    gpu = arguments.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        parser.error(f"--device {arguments.device}: torch sees no GPU here (use --device cpu)")
    plan = Plan(
        device=arguments.device,
        quick=arguments.quick,
        # Quick: one window long enough for a CPU ResNet-50 request queue to complete some requests.
        seconds=arguments.seconds or 6.0,
        concurrencies=tuple(arguments.concurrency or ((4, 8) if arguments.quick else (32, 64))),
        max_batch=arguments.max_batch or (32 if gpu else None),
        # A GPU: two batches in flight, so one batch's copies and host work overlap the other's kernels.
        # A CPU: one single-threaded batch per core (benchmarks/serving.py explains why one thread).
        concurrent_batches=2 if gpu else cores,
        torch_threads=1,
        client_processes=max(1, min(8, cores // 4)),
        tests=not arguments.skip_tests,
    )
    return plan, arguments.json


def drive(url: str, files: list[bytes], concurrency: int, seconds: float, processes: int) -> Measurement:
    """`drive_load` from `processes` processes at once (threads split among them), merged."""
    if processes <= 1:
        return drive_load(url, files, concurrency, seconds, warmup=1.0)
    shares = [concurrency // processes + (1 if index < concurrency % processes else 0) for index in range(processes)]
    with ProcessPoolExecutor(len(shares), mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(drive_load, *zip(*[(url, files, share, seconds, 1.0) for share in shares], strict=True)))
    merged = Measurement(seconds=max(part.seconds for part in parts))
    for part in parts:
        merged.latencies += part.latencies
        merged.images += part.images
        merged.errors += part.errors
        merged.generator_cpu_seconds += part.generator_cpu_seconds
        merged.generator_seconds = max(merged.generator_seconds, part.generator_seconds)
    return merged


def service_environment(plan: Plan, environment: dict[str, str], folder: Path, extra_entry: str) -> dict[str, str]:
    chosen = {
        **environment,
        ServingVariables.DEVICE: plan.device,
        ServingVariables.TORCH_THREADS: str(plan.torch_threads),
        ServingVariables.CONCURRENT_BATCHES: str(plan.concurrent_batches),
        ServingVariables.PREDICTIONS_STORE: str(folder / "predictions"),
        ServingVariables.LABELS_STORE: str(folder / "labels"),
        ServingVariables.EXTRA_ENTRY: extra_entry,
        # Its own BentoML home: each `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir.
        "BENTOML_HOME": str(folder / "bentoml-home"),
    }
    if plan.max_batch:
        chosen[ServingVariables.MAX_BATCH_SIZE] = str(plan.max_batch)
    return chosen


def compare(
    entry: CatalogueEntry, version: str, images: np.ndarray, plan: Plan, environment: dict[str, str], folder: Path
) -> list[dict[str, Any]]:
    """(a), (b), (c) for one registered network at each concurrency; one result row per concurrency."""
    from workloads import features
    from workloads.serving.device import serving_placement
    from workloads.serving.local import start_local_service
    from workloads.serving.model_source import load_version
    from workloads.serving.settings import load_settings

    extra = next(extra for known, _, extra in NETWORKS if known.name == entry.name)
    service_env = service_environment(plan, environment, folder / entry.name, extra)
    settings = load_settings({**service_env, ServingVariables.MODEL: entry.name})
    torch.set_num_threads(plan.torch_threads)
    loaded = load_version(entry.name, version, serving_placement(settings))
    inputs = features.preprocess(images)
    batch = np.concatenate([inputs] * int(np.ceil(settings.max_batch_size / len(inputs))))[: settings.max_batch_size]
    files = [png(image) for image in images]
    print(
        f"\n{entry.name} v{version} on {plan.device}: max batch {settings.max_batch_size}, concurrent batches "
        f"{settings.concurrent_batches}, torch threads {plan.torch_threads}, "
        f"latency budget {settings.max_latency_ms} ms",
        flush=True,
    )
    service = start_local_service(entry.name, environment=service_env, log_path=folder / f"{entry.name}-service.log")
    flask: Any = None
    try:
        flask, flask_url = start_flask(entry.name, version, plan.torch_threads, max(plan.concurrencies), service_env)
        service.wait_until_ready(300)
        raw_batches(batch, loaded.predict, plan.concurrent_batches, 2.0)  # warm-up, not counted
        return [
            measure_concurrency(entry.name, concurrency, batch, loaded.predict, files, service.url, flask_url, plan)
            for concurrency in plan.concurrencies
        ]
    finally:
        if flask is not None:
            stop(flask)
        service.stop()


def measure_concurrency(
    name: str,
    concurrency: int,
    batch: np.ndarray,
    predict: Any,
    files: list[bytes],
    service_url: str,
    flask_url: str,
    plan: Plan,
) -> dict[str, Any]:
    drive(service_url, files, concurrency, 2.0, plan.client_processes)  # warm-up: connections, the dispatcher
    drive(flask_url, files, concurrency, 2.0, plan.client_processes)
    results = {"raw": Measurement(), "served": Measurement(), "flask": Measurement()}
    rounds = 1 if plan.quick else max(1, round(plan.seconds / 3.0))
    for _ in range(rounds):
        each = plan.seconds / rounds
        results["raw"].add(raw_batches(batch, predict, plan.concurrent_batches, each))
        results["served"].add(drive(service_url, files, concurrency, each, plan.client_processes))
        results["flask"].add(drive(flask_url, files, concurrency, each, plan.client_processes))
    raw, served, baseline = results["raw"], results["served"], results["flask"]
    print(f" concurrency {concurrency} ({rounds} interleaved rounds of {plan.seconds / rounds:.1f} s):", flush=True)
    print(row(f"(a) raw, {plan.concurrent_batches} x batch {len(batch)}", raw), flush=True)
    print(row("(b) BentoML, adaptive batching", served), flush=True)
    print(row("(c) Flask, per request", baseline), flush=True)
    ratio_raw, ratio_flask = ratio(served, raw), ratio(served, baseline)
    print(f"  ratios: (b)/(a) = {ratio_raw:.2f}   (b)/(c) = {ratio_flask:.2f}", flush=True)
    return {
        "model": name,
        "device": plan.device,
        "concurrency": concurrency,
        **{
            f"{label}_{key}": value
            for label, measurement in results.items()
            for key, value in summary(measurement).items()
        },
        "served_over_raw": ratio_raw,
        "served_over_flask": ratio_flask,
    }


def ratio(numerator: Measurement, denominator: Measurement) -> float:
    """Throughput ratio; nan when the denominator completed nothing within its window."""
    return numerator.images_per_second / denominator.images_per_second if denominator.images else float("nan")


def summary(measurement: Measurement) -> dict[str, float]:
    return {
        "images_per_second": measurement.images_per_second,
        "p50_ms": measurement.p50_ms,
        "p99_ms": measurement.p99_ms,
        "errors": float(measurement.errors),
        "generator_cores": measurement.generator_cores,
    }


def training(plan: Plan) -> dict[str, Any]:
    """Images/s of the GPU catalogue model's training on the device and on the CPU, with accuracies."""
    from workloads import catalogue, features
    from workloads.datasets.builders import build
    from workloads.training import classification_metrics, train_model

    entry = catalogue.get("surface-defects")
    data = build(entry.name)
    order = np.random.default_rng(entry.training.seed).permutation(len(data.labels))  # classes mixed in both splits
    inputs, labels = features.preprocess(data.images)[order], data.labels[order]
    split = int(len(labels) * (1 - entry.training.validation_fraction))
    parameters = entry.training
    if plan.quick:
        parameters = type(parameters)(**{**parameters.as_dict(), "epochs": 2})
    devices = [plan.device, "cpu"] if plan.on_gpu else ["cpu"]
    results: dict[str, Any] = {"model": entry.name, "epochs": parameters.epochs, "images": split}
    print(f"\ntraining {entry.name}: {split} images x {parameters.epochs} epochs, batch {parameters.batch_size}")
    for device in devices:
        result = train_model(entry, inputs[:split], labels[:split], parameters, device=device)
        validation = {}
        for label, placement in inference_variants(device):
            prepared = placement.prepare(copy.deepcopy(result.model))  # float16 would convert it in place
            predicted = placement.forward(prepared, inputs[split:]).argmax(axis=1)
            validation[label] = classification_metrics(labels[split:], predicted, entry.class_names)[0]
        results[device] = {"images_per_second": result.images_per_second, "validation_accuracy": validation}
        shown = ", ".join(f"{label} {accuracy:.4f}" for label, accuracy in validation.items())
        print(f"  {device:<8} {result.images_per_second:10.0f} images/s   validation accuracy: {shown}", flush=True)
    if plan.on_gpu:
        ratio = results[plan.device]["images_per_second"] / results["cpu"]["images_per_second"]
        print(f"  GPU/CPU training throughput = {ratio:.2f}", flush=True)
    return results


def inference_variants(device: str) -> list[tuple[str, Any]]:
    """float32, and where they apply the switches MLOPS_HALF_PRECISION and MLOPS_CHANNELS_LAST turn on."""
    from workloads.serving.device import Placement

    shape = (32, 32)
    variants = [("float32", Placement(device=device, image_shape=shape))]
    variants.append(("channels-last", Placement(device=device, channels_last=True, image_shape=shape)))
    if device.startswith("cuda"):
        variants.append(("float16", Placement(device=device, half_precision=True, image_shape=shape)))
    return variants


def serving_tests(plan: Plan) -> int:
    """The serving tests with MLOPS_DEVICE set to the device: the service, the warm-up, the metrics."""
    paths = QUICK_SERVING_TESTS if plan.quick else SERVING_TESTS
    environment = {**os.environ, ServingVariables.DEVICE: plan.device, "PYTHONPATH": str(REPOSITORY_ROOT)}
    print(f"\nserving tests with {ServingVariables.DEVICE}={plan.device}: {' '.join(paths)}", flush=True)
    command = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider", "-W", "ignore"]
    return subprocess.run(command, cwd=REPOSITORY_ROOT, env=environment, check=False).returncode


def register_networks() -> list[tuple[CatalogueEntry, str, np.ndarray]]:
    """Both networks as version 1.. of their own registered models, behind `production`."""
    from benchmarks.registered_models import register_module
    from workloads import features
    from workloads.tracking.registry import set_alias

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 224, 224), dtype=np.uint8)
    registered = []
    for entry, network_class, _ in NETWORKS:
        torch.manual_seed(0)
        network = network_class(classes=10).eval()
        example = torch.from_numpy(features.preprocess(images[:2]))
        version = register_module(entry.name, network, example, {"accuracy": 0.1})
        set_alias(entry.name, "production", version)
        registered.append((entry, version, images))
    return registered


def main(argv: list[str] | None = None) -> int:
    plan, json_path = parse_plan(argv)
    from workloads.tracking.local import start_local_tracking

    started = time.monotonic()
    name = torch.cuda.get_device_name(torch.device(plan.device)) if plan.on_gpu else "CPU"
    print(
        f"device {plan.device} ({name}), {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"quick {plan.quick}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    figures: dict[str, Any] = {"plan": asdict(plan), "torch": torch.__version__, "device_name": name}
    with tempfile.TemporaryDirectory(prefix="mlops-gpu-bench-") as scratch:
        folder = Path(scratch)
        with start_local_tracking(folder / "tracking") as server:
            environment = server.client_environment()
            os.environ.update(environment)
            figures["serving"] = [
                result
                for entry, version, images in register_networks()
                for result in compare(entry, version, images, plan, environment, folder)
            ]
    figures["training"] = training(plan)
    figures["serving_tests_exit_status"] = serving_tests(plan) if plan.tests else None
    figures["seconds"] = time.monotonic() - started
    print(f"\nbenchmark done in {figures['seconds']:.0f} s", flush=True)
    if json_path is not None:
        json_path.write_text(json.dumps(figures, indent=2, default=float), encoding="utf-8")
    return 1 if figures["serving_tests_exit_status"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
