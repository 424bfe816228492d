"""The catalogue's model definitions: plain torch `nn.Module`s taking `features.preprocess` output,
shape (N, 1, H, W) float32, and returning class logits (N, classes)."""

from workloads.models.digits import DigitClassifier
from workloads.models.surface_defects import SurfaceDefectClassifier

__all__ = ["DigitClassifier", "SurfaceDefectClassifier"]
