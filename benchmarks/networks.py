"""The benchmarks' ResNet-sized networks in plain torch, for one grayscale channel, random weights.

torchvision's layouts: ResNet-18 (basic blocks 2-2-2-2; 11.2 M parameters, 1.8 GFLOPs per 224x224
image) and ResNet-50 (bottleneck blocks 3-4-6-3, expansion 4; 23.5 M parameters, about 4.1 GFLOPs).
The benchmarks measure throughput and latency, not accuracy: the weights stay random. The entries
that serve them (not in the catalogue) are `benchmarks.serving:RESNET_ENTRY` and `RESNET50_ENTRY` here.
"""

from __future__ import annotations

import torch
from torch import nn

from workloads.catalogue_entry import CatalogueEntry, TrainingParameters


def benchmark_entry(name: str, network: str, size: str) -> CatalogueEntry:
    """The entry that serves one of these networks (1x224x224, 10 classes); never trained."""
    return CatalogueEntry(
        name=name,
        task="image-classification",
        dataset="none",
        model_factory=f"benchmarks.networks:{network}",
        image_shape=(224, 224),
        class_names=tuple(f"class-{index}" for index in range(10)),
        training=TrainingParameters(epochs=1, batch_size=8, learning_rate=1e-3),
        quality_metric="accuracy",
        quality_threshold=0.1,
        promotion_margin=0.0,
        description=f"{size}-sized benchmark network (random weights); not trained, not in the catalogue.",
    )


RESNET50_ENTRY = benchmark_entry("resnet50-bench", "ResNet50", "ResNet-50")
"""Served through MLOPS_SERVING_EXTRA_ENTRY=benchmarks.networks:RESNET50_ENTRY."""


def _convolution(inputs: int, outputs: int, size: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, size, stride, size // 2, bias=False), nn.BatchNorm2d(outputs)]


class _Residual(nn.Module):
    """`body(x) + shortcut(x)`, then ReLU; the shortcut projects when the shape changes."""

    def __init__(self, body: list[nn.Module], inputs: int, outputs: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(*_convolution(inputs, outputs, 1, stride))
        self.activation = nn.ReLU(inplace=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(images) + self.shortcut(images))


class BasicBlock(_Residual):
    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        body = [*_convolution(inputs, outputs, 3, stride), nn.ReLU(inplace=True), *_convolution(outputs, outputs, 3)]
        super().__init__(body, inputs, outputs, stride)


class Bottleneck(_Residual):
    expansion = 4

    def __init__(self, inputs: int, width: int, stride: int) -> None:
        outputs = width * self.expansion
        body = [
            *_convolution(inputs, width, 1),
            nn.ReLU(inplace=True),
            *_convolution(width, width, 3, stride),
            nn.ReLU(inplace=True),
            *_convolution(width, outputs, 1),
        ]
        super().__init__(body, inputs, outputs, stride)


class _ResNet(nn.Module):
    """The 7x7 stem and max-pool, the stages, global average pooling and a linear head."""

    def __init__(self, stages: list[nn.Module], features: int, classes: int) -> None:
        super().__init__()
        stem = [*_convolution(1, 64, 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        self.features = nn.Sequential(*stem, *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(features, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class ResNet18(_ResNet):
    def __init__(self, classes: int = 10) -> None:
        stages: list[nn.Module] = []
        inputs = 64
        for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages += [BasicBlock(inputs, outputs, stride), BasicBlock(outputs, outputs, 1)]
            inputs = outputs
        super().__init__(stages, inputs, classes)


class ResNet50(_ResNet):
    def __init__(self, classes: int = 10) -> None:
        stages: list[nn.Module] = []
        inputs = 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for index in range(blocks):
                stages.append(Bottleneck(inputs, width, stride if index == 0 else 1))
                inputs = width * Bottleneck.expansion
        super().__init__(stages, inputs, classes)
