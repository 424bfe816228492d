"""A ResNet-50-sized benchmark network in plain torch, and the entry that serves it (not in the catalogue).

torchvision's resnet50 layout (bottleneck blocks 3-4-6-3, expansion 4; 23.5 M parameters and about
4.1 GFLOPs per 224x224 image) for one input channel, random weights: the benchmark measures
throughput and latency, not accuracy. Served through MLOPS_SERVING_EXTRA_ENTRY=benchmarks.resnet50:RESNET50_ENTRY.
"""

from __future__ import annotations

import torch
from torch import nn

from workloads.catalogue_entry import CatalogueEntry, TrainingParameters

RESNET50_ENTRY = CatalogueEntry(
    name="resnet50-bench",
    task="image-classification",
    dataset="none",
    model_factory="benchmarks.resnet50:ResNet50",
    image_shape=(224, 224),
    class_names=tuple(f"class-{index}" for index in range(10)),
    training=TrainingParameters(epochs=1, batch_size=8, learning_rate=1e-3),
    quality_metric="accuracy",
    quality_threshold=0.1,
    promotion_margin=0.0,
    description="ResNet-50-sized benchmark network (random weights); not trained, not in the catalogue.",
)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        super().__init__()
        outputs = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, outputs, 1, bias=False),
            nn.BatchNorm2d(outputs),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(images) + self.shortcut(images))


class ResNet50(nn.Module):
    """ResNet-50 for one grayscale channel."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(1, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        ]
        inputs = 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for index in range(blocks):
                layers.append(Bottleneck(inputs, width, stride if index == 0 else 1))
                inputs = width * Bottleneck.expansion
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(inputs, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
