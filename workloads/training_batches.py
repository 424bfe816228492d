"""Where training batches come from, so that a GPU is not left waiting for them.

The catalogue's training splits are preprocessed float32 arrays of a few MB: the fastest feed for
any device is to hold the whole split *on* the device and index a batch there (`DeviceResident`), so
no step waits for a host→device copy and no worker process is needed. On a GPU the one copy goes
through pinned memory with `non_blocking=True`. This is also exactly what CPU training always did,
so the CPU results (the seeded permutations, the batches, the weights) are unchanged.

A split too large for that (more than `RESIDENT_SHARE` of the GPU's memory) streams through a
`DataLoader` instead (`Streamed`), with what keeps a GPU fed (`loader_settings`): worker processes
that gather batches in parallel, kept alive across epochs (`persistent_workers`, no re-spawn per
epoch), pinned batches (`pin_memory`) so each copy is an asynchronous DMA, a couple of batches
prefetched per worker. Its order is the same seeded permutation per epoch (`SeededPermutation`),
not `RandomSampler`'s: with a generator that one draws a second, empty `randperm` after each epoch's
(torch 2.13, torch/utils/data/sampler.py, `RandomSampler.__iter__`), so from the second epoch on its
order would differ from the resident split's for the same seed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

RESIDENT_SHARE = 0.25
"""Largest share of a GPU's memory the training split may take to be held there whole."""
MAX_LOADER_WORKERS = 4


def loader_settings(device: torch.device, cpus: int | None = None) -> dict[str, Any]:
    """`DataLoader` arguments for a streamed split: workers, pinning and prefetch on a GPU only."""
    if device.type != "cuda":
        return {"num_workers": 0, "pin_memory": False}
    workers = max(1, min(MAX_LOADER_WORKERS, (cpus or os.cpu_count() or 1) - 1))
    return {"num_workers": workers, "pin_memory": True, "persistent_workers": True, "prefetch_factor": 2}


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """One host array on `device`: through pinned memory and asynchronously on a GPU."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


class DeviceResident:
    """The whole split on the device; each epoch a seeded permutation indexes its batches there."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, device: torch.device) -> None:
        self.features = to_device(features, device)
        self.targets = to_device(labels, device)
        self.device = device

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        permutation = torch.randperm(self.features.shape[0], generator=generator).to(self.device)
        for start in range(0, self.features.shape[0], batch_size):
            batch = permutation[start : start + batch_size]
            yield self.features[batch], self.targets[batch]


class SeededPermutation(torch.utils.data.Sampler[int]):
    """One `torch.randperm(n, generator=...)` per epoch: the order `DeviceResident` uses."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.size, generator=self.generator).tolist())

    def __len__(self) -> int:
        return self.size


class Streamed:
    """The split in host memory, batches gathered by a DataLoader and copied to the device as they come."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, device: torch.device, batch_size: int) -> None:
        self.device = device
        self.dataset = torch.utils.data.TensorDataset(torch.from_numpy(features), torch.from_numpy(labels))
        self.batch_size = batch_size
        self._loader: torch.utils.data.DataLoader[Any] | None = None

    def epoch(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self._loader is None:  # one loader for every epoch: its persistent workers outlive an epoch
            sampler = SeededPermutation(len(self.dataset), generator)
            self._loader = torch.utils.data.DataLoader(
                self.dataset, batch_size=batch_size, sampler=sampler, **loader_settings(self.device)
            )
        for features, targets in self._loader:
            yield features.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


def batch_source(
    features: np.ndarray, labels: np.ndarray, device: torch.device, batch_size: int
) -> DeviceResident | Streamed:
    """Device-resident when the split fits (always on the CPU), else streamed."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    labels = labels.astype(np.int64)
    if device.type == "cuda":
        capacity = torch.cuda.get_device_properties(device).total_memory
        if features.nbytes > RESIDENT_SHARE * capacity:
            return Streamed(features, labels, device, batch_size)
    return DeviceResident(features, labels, device)
