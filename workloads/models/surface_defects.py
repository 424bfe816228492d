"""Surface-defect classifier for 32x32 texture patches: clean, scratch or stain."""

from __future__ import annotations

import torch
from torch import nn

CLASSES = 3


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, kernel_size=3, padding=1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(),
    )


class SurfaceDefectClassifier(nn.Module):
    """Three conv blocks and global max pooling.

    A defect is small and can sit anywhere on the patch: global *max* pooling keeps the strongest
    local response wherever it is, where average pooling would dilute a thin scratch into the
    texture around it. Works for any input size.
    """

    def __init__(self, classes: int = CLASSES) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _block(1, 16),
            nn.MaxPool2d(2),
            _block(16, 32),
            nn.MaxPool2d(2),
            _block(32, 64),
            nn.AdaptiveMaxPool2d(1),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
