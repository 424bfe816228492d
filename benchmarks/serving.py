"""Serving throughput and latency: the raw model, the BentoML service, and a per-request Flask baseline.

Starts its own tracking server (`start_local_tracking`, SQLite in a temporary folder), registers two
models through the platform's own code (`tracked_run`, `log_model`, `register_version`) and prints,
for each, in this one run on this machine:

  (a) raw: batched forward passes of the loaded model under `torch.inference_mode`, batches of the
      service's maximum size, K of them at a time as the service runs them (images/s and per-batch
      p50/p99) — the limit;
  (b) served: `bentoml serve` (adaptive batching, up to K batches in the model at once) under C
      concurrent clients sending PNG files over loopback HTTP (images/s, per-request p50/p99, errors);
  (c) Flask: `benchmarks/flask_baseline.py` behind gunicorn with C threads, model loaded once,
      inference_mode, one forward per request, the same decoding — under the same load;

(a), (b) and (c) are measured in turn, in rounds of about 5 s (`--seconds` in all per configuration,
after an uncounted warm-up), so that load from other jobs on a shared machine falls on all three alike;
then the ratios (b)/(a) and (b)/(c), the CPU the load generator itself used (cores, from getrusage),
and finally a fixed-concurrency soak on the digits service (default 60 s): errors and the
resident memory of the service's whole process tree over time (flat = the end within 10 % of the
start after warm-up; the slope after warm-up is printed too).

Models: the catalogue's `digits` (trained 3 epochs) and a ResNet-18-sized network in plain torch
(benchmarks/networks.py: random weights, 1x224x224 input, 10 classes), served through
MLOPS_SERVING_EXTRA_ENTRY.
Torch threads T are the same in (a), (b) and (c) for a model: 1 for digits (tiny convolutions do not
split well, see workloads/training.py) and, by default, 1 for the ResNet (`--resnet-threads`). (a) and
(b) run K = cores // T batches at a time (MLOPS_CONCURRENT_BATCHES), so all three use every core; (c)
runs one forward per request, as many at a time as requests arrive (up to C). Why T = 1 by default: on
two cores shared with other jobs, a two-thread forward stalls whenever another process takes one core
(OpenMP threads wait for each other), which measured 5-10x slower per image than one thread.

    .venv/bin/python benchmarks/serving.py [--seconds 15] [--soak-seconds 60] [--concurrency 8]

Flask and gunicorn come with the `tracking` extra (MLflow depends on both); nothing else is needed.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

# Run as a script, only benchmarks/ is on the path: the checkout's packages come from its root.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY_ROOT))

from benchmarks.flask_baseline import MODEL_VERSION_VARIABLE  # noqa: E402
from benchmarks.networks import ResNet18, benchmark_entry  # noqa: E402
from workloads.serving.local import LocalModelService  # noqa: E402
from workloads.serving.settings import ServingVariables  # noqa: E402

RESNET_ENTRY = benchmark_entry("resnet18-bench", "ResNet18", "ResNet-18")
"""Served by the benchmark through MLOPS_SERVING_EXTRA_ENTRY=benchmarks.serving:RESNET_ENTRY."""


@dataclass
class Measurement:
    """What one configuration did over one or more measurement rounds (merged with `add`)."""

    latencies: list[float] = field(default_factory=list)
    """Seconds per request (served) or per batch (raw)."""
    images: int = 0
    seconds: float = 0.0
    errors: int = 0
    generator_cpu_seconds: float = 0.0
    generator_seconds: float = 0.0

    def add(self, other: Measurement) -> None:
        self.latencies += other.latencies
        self.images += other.images
        self.seconds += other.seconds
        self.errors += other.errors
        self.generator_cpu_seconds += other.generator_cpu_seconds
        self.generator_seconds += other.generator_seconds

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else float("nan")

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def generator_cores(self) -> float:
        return self.generator_cpu_seconds / self.generator_seconds if self.generator_seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


ROUND_SECONDS = 5.0
"""Length of one measurement round; --seconds is split into rounds of about this length."""


def raw_batches(data: np.ndarray, predict: Callable[[np.ndarray], object], streams: int, seconds: float) -> Measurement:
    """`streams` threads, each running forward passes of the batch `data` back to back."""
    durations: list[float] = []
    lock = threading.Lock()
    started = time.perf_counter()

    def stream() -> None:
        while time.perf_counter() - started < seconds:
            begin = time.perf_counter()
            predict(data)
            with lock:
                durations.append(time.perf_counter() - begin)

    workers = [threading.Thread(target=stream, daemon=True) for _ in range(streams)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Measurement(latencies=durations, images=len(data) * len(durations), seconds=time.perf_counter() - started)


def drive_load(url: str, files: list[bytes], concurrency: int, seconds: float, warmup: float = 3.0) -> Measurement:
    """C threads, each posting PNG files back to back; counts only what completes after the warm-up."""
    import requests

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start_at = time.perf_counter() + warmup
    stop_at = start_at + seconds

    def client(offset: int) -> None:
        with requests.Session() as session:
            index = offset
            while True:
                begin = time.perf_counter()
                if begin >= stop_at:
                    return
                payload = files[index % len(files)]
                index += 1
                try:
                    response = session.post(
                        f"{url}/classify_image", files={"image": ("i.png", payload, "image/png")}, timeout=60
                    )
                    ok = response.status_code == 200
                except requests.RequestException:
                    ok = False
                end = time.perf_counter()
                if begin >= start_at and end <= stop_at:
                    with lock:
                        if ok:
                            latencies.append(end - begin)
                        else:
                            errors[0] += 1

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(concurrency)]
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, start_at - time.perf_counter()))
    usage_start = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join()
    usage_end = resource.getrusage(resource.RUSAGE_SELF)
    del usage_before
    cpu = (usage_end.ru_utime + usage_end.ru_stime) - (usage_start.ru_utime + usage_start.ru_stime)
    return Measurement(
        latencies=latencies,
        images=len(latencies),
        seconds=seconds,
        errors=errors[0],
        generator_cpu_seconds=cpu,
        generator_seconds=seconds + (time.perf_counter() - stop_at),
    )


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def tree_rss_mib(pid: int) -> float:
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
        return sum(member.memory_info().rss for member in members if member.is_running()) / 2**20
    except psutil.Error:
        return float("nan")


def start_flask(
    model: str, version: str, threads: int, concurrency: int, environment: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    from workloads.local_process import free_loopback_port

    port = free_loopback_port()
    beside_python = Path(sys.executable).with_name("gunicorn")  # the venv's, else the one on PATH
    gunicorn = str(beside_python) if beside_python.exists() else "gunicorn"
    process = subprocess.Popen(
        [
            gunicorn,
            "-k",
            "gthread",
            "-w",
            "1",
            "--threads",
            str(concurrency),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.flask_baseline:create_app()",
        ],
        env={
            **os.environ,
            **environment,
            ServingVariables.MODEL: model,
            MODEL_VERSION_VARIABLE: version,
            ServingVariables.TORCH_THREADS: str(threads),
            "PYTHONPATH": str(REPOSITORY_ROOT),
        },
        cwd=str(REPOSITORY_ROOT),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("the Flask baseline did not start")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def row(label: str, measurement: Measurement) -> str:
    return (
        f"  {label:<28} {measurement.images_per_second:9.1f} img/s   p50 {measurement.p50_ms:8.1f} ms   "
        f"p99 {measurement.p99_ms:8.1f} ms   requests {measurement.requests:6d}   errors {measurement.errors}"
        + (f"   load generator {measurement.generator_cores:.2f} cores" if measurement.generator_cores else "")
    )


def benchmark_model(
    name: str,
    version: str,
    threads: int,
    files: list[bytes],
    inputs: np.ndarray,
    arguments: argparse.Namespace,
    environment: dict[str, str],
    store: Path,
    extra_entry: str = "",
) -> dict[str, Measurement]:
    from workloads.serving.local import start_local_service
    from workloads.serving.settings import load_settings

    streams = max(1, (os.cpu_count() or 1) // threads)
    service_env = {
        **environment,
        ServingVariables.TORCH_THREADS: str(threads),
        ServingVariables.CONCURRENT_BATCHES: str(streams),
        ServingVariables.PREDICTIONS_STORE: str(store),
        # Its own BentoML home: each `bentoml serve` empties $BENTOML_HOME/prometheus_multiproc_dir.
        "BENTOML_HOME": str(store.parent / "bentoml-home"),
    }
    if extra_entry:
        service_env[ServingVariables.EXTRA_ENTRY] = extra_entry
    settings = load_settings({**service_env, ServingVariables.MODEL: name})
    results: dict[str, Measurement] = {}
    print(
        f"\n{name} v{version}: torch threads {threads}, concurrent batches {streams}, max batch "
        f"{settings.max_batch_size}, max latency {settings.max_latency_ms} ms, concurrency {arguments.concurrency}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    from workloads.serving.model_source import load_version

    torch.set_num_threads(threads)
    loaded = load_version(name, version)
    batch = np.concatenate([inputs] * int(np.ceil(settings.max_batch_size / len(inputs))))[: settings.max_batch_size]
    results = {"raw": Measurement(), "served": Measurement(), "flask": Measurement()}
    service = start_local_service(name, environment=service_env, log_path=store.parent / f"{name}-service.log")
    flask: subprocess.Popen[bytes] | None = None
    try:
        flask, flask_url = start_flask(name, version, threads, arguments.concurrency, service_env)
        service.wait_until_ready(300)
        # Warm-up, not counted: the dispatcher learns its batch cost, connections and caches fill.
        raw_batches(batch, loaded.predict, streams, 3.0)
        drive_load(service.url, files, arguments.concurrency, 3.0, warmup=0.0)
        drive_load(flask_url, files, arguments.concurrency, 3.0, warmup=0.0)
        # Rounds of (a), (b), (c) in turn: on a machine shared with other jobs, the load they add comes
        # and goes within seconds; interleaving spreads it over the three instead of one 15-s window each.
        rounds = max(1, round(arguments.seconds / ROUND_SECONDS))
        for _ in range(rounds):
            each = arguments.seconds / rounds
            results["raw"].add(raw_batches(batch, loaded.predict, streams, each))
            results["served"].add(drive_load(service.url, files, arguments.concurrency, each, warmup=1.0))
            results["flask"].add(drive_load(flask_url, files, arguments.concurrency, each, warmup=1.0))
        print(row(f"(a) raw forward, {streams} x batch {settings.max_batch_size}", results["raw"]), flush=True)
        print(row("(b) BentoML, adaptive batch", results["served"]), flush=True)
        print(row("(c) Flask per request", results["flask"]), flush=True)
        served, raw, baseline = results["served"], results["raw"], results["flask"]
        print(
            f"  ratios: (b)/(a) = {served.images_per_second / raw.images_per_second:.2f}   "
            f"(b)/(c) = {served.images_per_second / baseline.images_per_second:.2f}   "
            f"p99 (b)/(c) = {served.p99_ms / baseline.p99_ms:.2f}   ({rounds} interleaved rounds of "
            f"{arguments.seconds / rounds:.1f} s; load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        if flask is not None:
            stop(flask)
            flask = None
        if name == "digits" and arguments.soak_seconds > 0:
            results["soak"] = soak(service, files, arguments)
    finally:
        if flask is not None:
            stop(flask)
        service.stop()
    return results


def soak(service: LocalModelService, files: list[bytes], arguments: argparse.Namespace) -> Measurement:
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic() - started, tree_rss_mib(service.process.pid)))
            done.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = drive_load(service.url, files, arguments.concurrency, arguments.soak_seconds, warmup=5.0)
    done.set()
    sampler.join()
    warm_samples = [(moment, rss) for moment, rss in samples if moment >= 10] or samples
    warm = [rss for _, rss in warm_samples]
    growth = (warm[-1] - warm[0]) / warm[0] if warm else float("nan")
    # Least-squares slope after warm-up: one noisy sample does not make a trend.
    slope = float(np.polyfit([moment for moment, _ in warm_samples], warm, 1)[0]) * 60 if len(warm_samples) > 1 else 0.0
    print(row(f"soak {arguments.soak_seconds:.0f} s", result), flush=True)
    print(
        f"  soak memory (service process tree RSS, MiB, every 5 s): {', '.join(f'{rss:.0f}' for _, rss in samples)}"
        f"  -> after warm-up (10 s): {warm[0]:.0f} -> {warm[-1]:.0f} MiB, {growth * 100:+.1f} %, "
        f"trend {slope:+.1f} MiB/min; flat = within 10 %: {'yes' if abs(growth) <= 0.10 else 'NO'}; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window per configuration")
    parser.add_argument("--soak-seconds", type=float, default=60.0, help="fixed-concurrency soak on digits")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients for (b) and (c)")
    parser.add_argument(
        "--resnet-threads", type=int, default=1, help="torch threads per ResNet forward in (a), (b) and (c)"
    )
    parser.add_argument("--skip-resnet", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    arguments = parser.parse_args()

    from benchmarks.registered_models import digits_data, register_module, train_digits
    from workloads import features
    from workloads.tracking.local import start_local_tracking
    from workloads.tracking.registry import set_alias

    cores = os.cpu_count() or 1
    print(f"machine: {cores} CPU cores, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlops-serving-bench-") as scratch:
        folder = Path(scratch)
        server = start_local_tracking(folder / "tracking")
        try:
            environment = server.client_environment()
            os.environ.update(environment)
            if not arguments.skip_digits:
                torch.set_num_threads(1)
                data = digits_data()
                model, accuracy = train_digits(data, epochs=3, seed=0)
                digits_version = register_module(
                    "digits", model, torch.from_numpy(features.preprocess(data.test_images[:4])), {"accuracy": accuracy}
                )
                set_alias("digits", "production", digits_version)
                digit_files = [png(image) for image in data.test_images[:64]]
                benchmark_model(
                    "digits",
                    digits_version,
                    1,
                    digit_files,
                    features.preprocess(data.test_images),
                    arguments,
                    environment,
                    folder / "predictions",
                )
            if not arguments.skip_resnet:
                torch.manual_seed(0)
                network = ResNet18(classes=10).eval()
                rng = np.random.default_rng(0)
                images = rng.integers(0, 256, size=(16, 224, 224), dtype=np.uint8)
                version = register_module(
                    RESNET_ENTRY.name, network, torch.from_numpy(features.preprocess(images[:2])), {"accuracy": 0.1}
                )
                set_alias(RESNET_ENTRY.name, "production", version)
                benchmark_model(
                    RESNET_ENTRY.name,
                    version,
                    arguments.resnet_threads,
                    [png(image) for image in images],
                    features.preprocess(images),
                    arguments,
                    environment,
                    folder / "predictions",
                    extra_entry="benchmarks.serving:RESNET_ENTRY",
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
