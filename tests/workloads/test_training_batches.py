"""Training batches: the device-resident split and the streamed DataLoader give the same seeded batches,
and the loader settings that keep a GPU fed apply on a GPU only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workloads.training_batches import DeviceResident, Streamed, batch_source, loader_settings


def _split(count: int = 70) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.random((count, 1, 4, 4), dtype=np.float32), rng.integers(0, 3, size=count).astype(np.int64)


def test_streamed_batches_are_the_resident_ones_in_the_same_order() -> None:
    features, labels = _split()
    cpu = torch.device("cpu")
    resident, streamed = DeviceResident(features, labels, cpu), Streamed(features, labels, cpu, batch_size=16)
    first, second = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(3):  # the loader is built once; each epoch draws the next permutation of the same generator
        expected = list(resident.epoch(16, first))
        got = list(streamed.epoch(16, second))
        assert [len(batch) for batch, _ in got] == [16, 16, 16, 16, 6]
        for (want_x, want_y), (got_x, got_y) in zip(expected, got, strict=True):
            assert torch.equal(want_x, got_x) and torch.equal(want_y, got_y)


def test_on_the_cpu_the_split_is_held_whole_as_before() -> None:
    features, labels = _split()
    source = batch_source(features, labels, torch.device("cpu"), 16)
    assert isinstance(source, DeviceResident)
    assert source.features.dtype == torch.float32 and source.targets.dtype == torch.int64


def test_loader_settings_feed_a_gpu_and_leave_the_cpu_alone() -> None:
    assert loader_settings(torch.device("cpu")) == {"num_workers": 0, "pin_memory": False}
    gpu = loader_settings(torch.device("cuda:0"), cpus=16)
    assert gpu == {"num_workers": 4, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 2}
    assert loader_settings(torch.device("cuda:0"), cpus=1)["num_workers"] == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU (benchmarks/device_check.sh runs it)")
def test_on_a_gpu_the_split_lives_on_the_gpu() -> None:
    features, labels = _split()
    source = batch_source(features, labels, torch.device("cuda:0"), 16)
    assert isinstance(source, DeviceResident) and source.features.is_cuda
    batch, targets = next(source.epoch(16, torch.Generator().manual_seed(0)))
    assert batch.is_cuda and targets.is_cuda
