"""GPU memory and utilisation of this replica on /metrics, only when the model is served on a GPU.

Gauges (one value per replica: one BentoML worker per pod), sampled by a daemon thread every
`period` seconds rather than read at scrape time: BentoML's /metrics is prometheus_client's
multiprocess collector, which exports what the worker wrote to PROMETHEUS_MULTIPROC_DIR, not what a
custom collector in the worker would compute. `multiprocess_mode="livesum"` keeps only live
processes' values (a restarted worker's old file does not linger) and with one worker is its value.

On the CPU no gauge is created, so the families are absent from /metrics (a gauge writes its file
when created). The readings come through `DeviceReading`, so the exporter is tested with a reading
object of known values; `TorchCudaReading` is the real one:

* memory: `torch.cuda.memory_allocated` (tensors), `memory_reserved` (the caching allocator's pool,
  what the process holds), `max_memory_allocated` (peak since start) and the device's total;
* utilisation: `torch.cuda.utilization`, which asks NVML (nvidia-ml-py, a BentoML dependency) for the
  share of the last sample period in which a kernel ran, mapping CUDA_VISIBLE_DEVICES to NVML's
  index itself (torch 2.13, torch/cuda/__init__.py `utilization` and `_get_nvml_device_index`). It is
  left out (None) where NVML cannot answer, and the gauge then stays absent rather than reading 0.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("mlops.serving")
METRIC_PREFIX = "mlops_serving_gpu_"
MEMORY_GAUGES = {
    "allocated": "GPU memory held by tensors of this replica (torch.cuda.memory_allocated)",
    "reserved": "GPU memory held by this replica's caching allocator (torch.cuda.memory_reserved)",
    "peak_allocated": "Most GPU memory held by tensors since the replica started (torch.cuda.max_memory_allocated)",
    "total": "Memory of the replica's GPU",
}
UTILIZATION_GAUGE = f"{METRIC_PREFIX}utilization_ratio"


@dataclass(frozen=True)
class MemorySample:
    allocated: int
    reserved: int
    peak_allocated: int
    total: int


class DeviceReading(Protocol):
    """What the exporter reads from one GPU."""

    device: str

    def memory(self) -> MemorySample: ...

    def utilization(self) -> float | None:
        """Share of time a kernel ran (0-1), or None when the driver cannot say."""
        ...


class TorchCudaReading:
    """The real reading: torch's CUDA allocator statistics and NVML's utilisation."""

    def __init__(self, device: str) -> None:
        self.device = device

    def memory(self) -> MemorySample:
        import torch

        return MemorySample(
            allocated=int(torch.cuda.memory_allocated(self.device)),
            reserved=int(torch.cuda.memory_reserved(self.device)),
            peak_allocated=int(torch.cuda.max_memory_allocated(self.device)),
            total=int(torch.cuda.get_device_properties(self.device).total_memory),
        )

    def utilization(self) -> float | None:
        import torch

        try:
            return float(torch.cuda.utilization(self.device)) / 100.0
        except (ModuleNotFoundError, RuntimeError, OSError) as error:  # no NVML here: leave the gauge out
            logger.debug("GPU utilisation unavailable: %s", error)
            return None


class DeviceMetrics:
    """The GPU gauges of one replica, updated from a `DeviceReading`."""

    def __init__(self, reading: DeviceReading, registry: Any = None) -> None:
        """`registry=None`: the multiprocess files BentoML's /metrics exports (tests pass their own)."""
        import prometheus_client

        self.reading = reading
        self._registry = registry
        self._memory = {
            part: prometheus_client.Gauge(
                f"{METRIC_PREFIX}memory_{part}_bytes",
                help_text,
                ["device"],
                multiprocess_mode="livesum",
                registry=registry,
            )
            for part, help_text in MEMORY_GAUGES.items()
        }
        self._utilization: Any = None

    def update(self) -> None:
        """Read the device once and set the gauges."""
        sample = self.reading.memory()
        for part, gauge in self._memory.items():
            gauge.labels(device=self.reading.device).set(getattr(sample, part))
        utilization = self.reading.utilization()
        if utilization is None:
            return
        if self._utilization is None:  # created on the first answer: absent, not 0, where NVML never answers
            import prometheus_client

            self._utilization = prometheus_client.Gauge(
                UTILIZATION_GAUGE,
                "Share of the last sample period in which a kernel ran on the replica's GPU (NVML)",
                ["device"],
                multiprocess_mode="livesum",
                registry=self._registry,
            )
        self._utilization.labels(device=self.reading.device).set(utilization)


class DeviceSampler:
    """A daemon thread calling `DeviceMetrics.update` every `period` seconds until `stop`."""

    def __init__(self, metrics: DeviceMetrics, period: float = 5.0) -> None:
        self.metrics = metrics
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-metrics", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.metrics.update()
            except Exception as error:  # a reading failing must not end the sampling (nor the service)
                logger.warning("GPU metrics: reading failed (%s: %s)", type(error).__name__, error)
            self._stop.wait(self.period)

    def start(self) -> DeviceSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def start_device_metrics(device: str, period: float = 5.0) -> DeviceSampler | None:
    """Sample the GPU of a replica served on `cuda:N`; None (and no metric family) on the CPU."""
    if not device.startswith("cuda"):
        return None
    return DeviceSampler(DeviceMetrics(TorchCudaReading(device)), period).start()
