"""The one source of truth for turning images into model inputs and into drift features.

Training (the pipeline's preprocess step), serving (the BentoML service) and drift monitoring (the
daily job) all import this module and nothing else for these two transformations. That is how
training-serving skew is prevented: if serving normalised pixels differently from training, the
model would silently see inputs it never learned from; if the drift job computed statistics
differently from the reference table written at training time, it would report drift that is only
a difference in code. One module, one version number (`FEATURES_VERSION`), stored with every
reference table, so a reader can refuse a table written by incompatible code.

Images everywhere are grayscale batches of shape (N, H, W):
  * `uint8` in [0, 255] (what PNG decoding and the dataset snapshots give), or
  * floating point in [0, 1].
Anything else is refused with `InvalidImagesError` (a `ValueError`), whose message can be shown to a
user as it is (serving turns it into a 4xx).

Only numpy and pandas are needed (no torch), so the drift job's image stays small.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

FEATURES_VERSION = "1"
"""Bump when `preprocess` or `drift_features` change meaning: reference tables record it."""

PIXEL_MEAN = 0.5
PIXEL_STD = 0.5
"""Fixed normalisation to about [-1, 1]: model-independent, so no statistics file must travel."""

EMBEDDING_GRID = 8
"""Images are resampled to this square grid before projection, so every model shares the same
embedding definition whatever its input size."""
EMBEDDING_COMPONENTS = 8
EMBEDDING_SEED = 20261127
"""Seed of the fixed random projection. Never change it without bumping FEATURES_VERSION."""

EDGE_THRESHOLD = 0.25
"""Gradient magnitude (intensity per pixel, images in [0, 1]) above which a pixel counts as edge."""
DARK_LEVEL = 0.25
BRIGHT_LEVEL = 0.75
HISTOGRAM_BINS = 16

STATISTIC_COLUMNS = (
    "brightness_mean",
    "brightness_std",
    "brightness_p10",
    "brightness_median",
    "brightness_p90",
    "contrast",
    "dark_fraction",
    "bright_fraction",
    "entropy",
    "gradient_mean",
    "edge_density",
    "laplacian_variance",
    "center_of_mass_x",
    "center_of_mass_y",
    "mirror_asymmetry",
)
EMBEDDING_COLUMNS = tuple(f"embedding_{index}" for index in range(EMBEDDING_COMPONENTS))
FEATURE_COLUMNS = STATISTIC_COLUMNS + EMBEDDING_COLUMNS
"""Column order of `drift_features` (15 image statistics + 8 embedding components)."""

SOFTMAX_PREFIX = "softmax_"
"""Prefix of the model-output columns in the prediction log and the validation predictions table.

Named here, beside the drift features, because serving writes them, the pipeline writes them and the
drift job reads them (BBSD: a KS test per output dimension): one definition, no spelling to disagree on.
"""


def softmax_columns(n_classes: int) -> list[str]:
    """`softmax_0` .. `softmax_{n-1}`: column i holds the probability of model output i (class_names[i])."""
    if n_classes < 1:
        raise ValueError(f"a model has at least one class, got {n_classes}")
    return [f"{SOFTMAX_PREFIX}{index}" for index in range(n_classes)]


class InvalidImagesError(ValueError):
    """The input is not a batch of grayscale images this module understands."""


def as_image_batch(images: np.ndarray) -> np.ndarray:
    """Validate a batch of images and return it as float32 intensities in [0, 1], shape (N, H, W).

    The single conversion both `preprocess` and `drift_features` start from, so they can never
    disagree on what a pixel value means.
    """
    array = np.asarray(images)
    if array.ndim != 3:
        raise InvalidImagesError(
            f"expected a batch of grayscale images with shape (N, H, W), got shape {tuple(array.shape)}"
        )
    if array.shape[0] == 0 or array.shape[1] < 2 or array.shape[2] < 2:
        raise InvalidImagesError(f"expected at least one image of at least 2x2 pixels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise InvalidImagesError("images contain NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise InvalidImagesError(
                f"floating-point images must lie in [0, 1], got values in [{low:.4g}, {high:.4g}] "
                "(send uint8 pixels for 0-255 data)"
            )
        return values
    raise InvalidImagesError(f"images must be uint8 (0-255) or floating point in [0, 1], got dtype {array.dtype}")


def preprocess(images: np.ndarray) -> np.ndarray:
    """Model input for a batch of images: float32, shape (N, 1, H, W), normalised to about [-1, 1].

    Deterministic and stateless; `torch.from_numpy(preprocess(images))` is what every model's
    forward pass receives, in training and in serving.
    """
    intensities = as_image_batch(images)
    normalised = (intensities - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)
    return np.ascontiguousarray(normalised[:, np.newaxis, :, :], dtype=np.float32)


def _area_weights(source: int, target: int) -> np.ndarray:
    """(target, source) matrix averaging the source pixels each target pixel covers (box filter)."""
    edges = np.linspace(0.0, source, target + 1)
    starts, ends = edges[:-1, np.newaxis], edges[1:, np.newaxis]
    pixel_starts = np.arange(source)[np.newaxis, :]
    overlap = np.clip(np.minimum(ends, pixel_starts + 1) - np.maximum(starts, pixel_starts), 0.0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def resample(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a batch to (height, width) by area averaging (exact for integer factors).

    Separable, so it is two matrix products per batch: fast enough for a million prediction rows.
    """
    intensities = as_image_batch(images)
    rows = _area_weights(intensities.shape[1], height)
    columns = _area_weights(intensities.shape[2], width)
    return np.einsum("ih,nhw,jw->nij", rows, intensities, columns, optimize=True).astype(np.float32)


@cache
def _projection() -> np.ndarray:
    generator = np.random.default_rng(EMBEDDING_SEED)
    cells = EMBEDDING_GRID * EMBEDDING_GRID
    return (generator.standard_normal((cells, EMBEDDING_COMPONENTS)) / np.sqrt(cells)).astype(np.float32)


def embed(images: np.ndarray) -> np.ndarray:
    """Fixed, model-independent embedding (N, EMBEDDING_COMPONENTS): a seeded random projection
    of the image resampled to an 8x8 grid and centred on mid-grey."""
    grid = resample(images, EMBEDDING_GRID, EMBEDDING_GRID).reshape(-1, EMBEDDING_GRID * EMBEDDING_GRID)
    return (grid - np.float32(0.5)) @ _projection()


def _entropy(intensities: np.ndarray) -> np.ndarray:
    flat = intensities.reshape(intensities.shape[0], -1)
    bins = np.minimum((flat * HISTOGRAM_BINS).astype(np.int64), HISTOGRAM_BINS - 1)
    offsets = np.arange(flat.shape[0])[:, np.newaxis] * HISTOGRAM_BINS
    counts = np.bincount((bins + offsets).ravel(), minlength=flat.shape[0] * HISTOGRAM_BINS)
    probabilities = counts.reshape(flat.shape[0], HISTOGRAM_BINS) / flat.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(probabilities > 0, probabilities * np.log2(probabilities), 0.0)
    return -terms.sum(axis=1)


def drift_features(images: np.ndarray) -> pd.DataFrame:
    """One row per image with the columns of `FEATURE_COLUMNS` (all float64).

    Image statistics that move when the camera, lighting or content moves — brightness level and
    spread, contrast, how dark/bright, histogram entropy, sharpness (gradients, edge density,
    Laplacian variance: blur lowers them, noise raises them), where the ink sits (centre of mass:
    shifts and rotations) and left/right asymmetry — plus the fixed embedding components.
    """
    intensities = as_image_batch(images)
    count, height, width = intensities.shape
    flat = intensities.reshape(count, -1)
    p10, median, p90 = np.percentile(flat, [10, 50, 90], axis=1)

    vertical = np.diff(intensities, axis=1)[:, :, :-1]
    horizontal = np.diff(intensities, axis=2)[:, :-1, :]
    gradient = np.sqrt(vertical**2 + horizontal**2).reshape(count, -1)
    padded = np.pad(intensities, ((0, 0), (1, 1), (1, 1)), mode="edge")
    laplacian = (
        padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:] - 4 * intensities
    )

    mass = intensities.sum(axis=(1, 2))
    safe_mass = np.where(mass > 0, mass, 1.0)
    ys = (np.arange(height, dtype=np.float32) + 0.5) / height
    xs = (np.arange(width, dtype=np.float32) + 0.5) / width
    center_y = np.where(mass > 0, (intensities.sum(axis=2) @ ys) / safe_mass, 0.5)
    center_x = np.where(mass > 0, (intensities.sum(axis=1) @ xs) / safe_mass, 0.5)

    columns: dict[str, np.ndarray] = {
        "brightness_mean": flat.mean(axis=1),
        "brightness_std": flat.std(axis=1),
        "brightness_p10": p10,
        "brightness_median": median,
        "brightness_p90": p90,
        "contrast": p90 - p10,
        "dark_fraction": (flat < DARK_LEVEL).mean(axis=1),
        "bright_fraction": (flat > BRIGHT_LEVEL).mean(axis=1),
        "entropy": _entropy(intensities),
        "gradient_mean": gradient.mean(axis=1),
        "edge_density": (gradient > EDGE_THRESHOLD).mean(axis=1),
        "laplacian_variance": laplacian.reshape(count, -1).var(axis=1),
        "center_of_mass_x": center_x,
        "center_of_mass_y": center_y,
        "mirror_asymmetry": np.abs(intensities - intensities[:, :, ::-1]).reshape(count, -1).mean(axis=1),
    }
    embedding = embed(intensities)
    for index, name in enumerate(EMBEDDING_COLUMNS):
        columns[name] = embedding[:, index]
    frame = pd.DataFrame({name: np.asarray(columns[name], dtype=np.float64) for name in FEATURE_COLUMNS})
    return frame
