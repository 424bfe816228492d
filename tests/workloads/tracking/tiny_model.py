"""A classifier small enough to train in milliseconds, so tests exercise real training code."""

from __future__ import annotations

import torch
from torch import nn

FEATURES = 8
CLASSES = 3


class TinyClassifier(nn.Module):
    """Two linear layers: enough to have parameters, a loss that moves and a real forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def random_batch(rows: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels that are a fixed function of the seed."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(rows, FEATURES, generator=generator)
    labels = torch.randint(0, CLASSES, (rows,), generator=generator)
    return features, labels


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, seed: int) -> float:
    """One SGD step on a random batch; returns the loss before the update."""
    features, labels = random_batch(32, seed)
    optimizer.zero_grad()
    loss = nn.functional.cross_entropy(model(features), labels)
    loss.backward()
    optimizer.step()
    return float(loss.item())
