"""The GPU gauges of a replica, from a reading object of known values (the exporter's whole path:
gauges, labels, the utilisation left out while NVML cannot answer, the sampler outliving a failure)."""

from __future__ import annotations

import threading
import time

import prometheus_client
import pytest

from workloads.serving.device_metrics import (
    UTILIZATION_GAUGE,
    DeviceMetrics,
    DeviceSampler,
    MemorySample,
    start_device_metrics,
)


class ScriptedReading:
    """A `DeviceReading` answering what the test says, counting how often it was read."""

    def __init__(self, device: str, utilization: float | None, fail_first: int = 0) -> None:
        self.device = device
        self.reported_utilization = utilization
        self.reads = 0
        self.fail_first = fail_first
        self.read_twice = threading.Event()

    def memory(self) -> MemorySample:
        self.reads += 1
        if self.reads >= 2:
            self.read_twice.set()
        if self.reads <= self.fail_first:
            raise RuntimeError("CUDA error: the driver went away")
        return MemorySample(allocated=1_000 * self.reads, reserved=4_096, peak_allocated=2_000, total=16_000_000)

    def utilization(self) -> float | None:
        return self.reported_utilization


def _value(registry: prometheus_client.CollectorRegistry, name: str, device: str) -> float | None:
    return registry.get_sample_value(name, {"device": device})


def test_memory_and_utilisation_are_gauges_per_device() -> None:
    registry = prometheus_client.CollectorRegistry()
    metrics = DeviceMetrics(ScriptedReading("cuda:0", utilization=0.42), registry=registry)
    metrics.update()
    assert _value(registry, "mlops_serving_gpu_memory_allocated_bytes", "cuda:0") == 1_000
    assert _value(registry, "mlops_serving_gpu_memory_reserved_bytes", "cuda:0") == 4_096
    assert _value(registry, "mlops_serving_gpu_memory_peak_allocated_bytes", "cuda:0") == 2_000
    assert _value(registry, "mlops_serving_gpu_memory_total_bytes", "cuda:0") == 16_000_000
    assert _value(registry, UTILIZATION_GAUGE, "cuda:0") == pytest.approx(0.42)
    metrics.update()  # a second reading replaces the first
    assert _value(registry, "mlops_serving_gpu_memory_allocated_bytes", "cuda:0") == 2_000


def test_utilisation_is_absent_not_zero_while_nvml_cannot_answer() -> None:
    registry = prometheus_client.CollectorRegistry()
    reading = ScriptedReading("cuda:1", utilization=None)
    metrics = DeviceMetrics(reading, registry=registry)
    metrics.update()
    text = prometheus_client.generate_latest(registry).decode()
    assert "mlops_serving_gpu_memory_allocated_bytes" in text
    assert UTILIZATION_GAUGE not in text
    reading.reported_utilization = 0.9
    metrics.update()
    assert _value(registry, UTILIZATION_GAUGE, "cuda:1") == pytest.approx(0.9)


def test_the_sampler_keeps_sampling_after_a_failed_reading() -> None:
    registry = prometheus_client.CollectorRegistry()
    reading = ScriptedReading("cuda:0", utilization=0.1, fail_first=1)
    sampler = DeviceSampler(DeviceMetrics(reading, registry=registry), period=0.05).start()
    try:
        assert reading.read_twice.wait(10)
        deadline = time.monotonic() + 10
        while _value(registry, "mlops_serving_gpu_memory_allocated_bytes", "cuda:0") is None:
            assert time.monotonic() < deadline, "no value after the failed reading"
            time.sleep(0.05)
    finally:
        sampler.stop()


def test_on_the_cpu_nothing_is_sampled_and_no_family_exists() -> None:
    assert start_device_metrics("cpu") is None
    assert "mlops_serving_gpu_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
