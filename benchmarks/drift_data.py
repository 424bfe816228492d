"""Data for the drift benchmarks: digit images with controlled shifts, and large synthetic logs.

Detection quality (`benchmarks/drift_quality.py`): scikit-learn's 8x8 digits split three ways with
the training pipeline's stratified split — training (the reference table and the model's training
data), validation (the reference's prediction table) and a held-out pool the windows are drawn from
(never seen by the model or the reference). Each window is a random subset of the pool, shifted:

    brightness   + 3 / 8 / 40 grey levels (of 255)
    noise        Gaussian, sigma 3 / 8 / 24 grey levels
    blur         Gaussian, sigma 0.25 / 0.5 / 1.0 pixels
    rotation     2 / 6 / 20 degrees (random sign per image)
    class_mix    10 / 30 / 60 % of the window drawn from the digits 0 and 1 only (a changed class mix)

The weakest magnitudes are chosen near the edge of what a 300-image window can show, so the
benchmark says where detection starts, not only that strong shifts are caught.

Detection power (`benchmarks/drift_power.py`): the protocol of Rabanser, Guennemann, Lipton, "Failing
Loudly" (NeurIPS 2019) on both catalogue models (`model_splits`, `PAPER_SHIFTS`, `power_window`):

    gaussian noise  sigma 1 / 10 / 100 grey levels (of 255), clipped
    image           small / medium / large random affine transforms (rotation, translation, shear,
                    zoom, flips; the paper's ranges, `IMAGE_TRANSFORMS`), nearest fill
    knock-out       10 / 50 / 100 % of class 0's images removed from the pool before drawing

each applied to 10 / 50 / 100 % of the window's images (knock-out: of the class's images). Pools:
digits has no more images than its 1,797, so its pool (30 %, ~540 images) is sampled WITH
replacement for windows larger than it (1,000 and 10,000 images: duplicates, whose statistics
understate the window's sampling noise — see the benchmark's docstring); surface-defects is
generated, so its pool is a fresh seeded draw of 10,002 images and no window repeats an image.

Speed (`benchmarks/drift.py`): prediction logs of any size in the serving layout, built by
resampling real digit feature rows and jittering them (continuous values, the real columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workloads import catalogue, features
from workloads.datasets.builders import build, build_surface_defects
from workloads.datasets.splits import stratified_split

SHIFTS: dict[str, tuple[float, float, float]] = {
    "brightness": (3.0, 8.0, 40.0),
    "noise": (3.0, 8.0, 24.0),
    "blur": (0.25, 0.5, 1.0),
    "rotation": (2.0, 6.0, 20.0),
    "class_mix": (0.1, 0.3, 0.6),
}
MIX_CLASSES = (0, 1)


def digit_splits(seed: int = 0, pool_fraction: float = 0.3) -> ModelSplits:
    data = build("digits")
    rest, pool = stratified_split(data.labels, pool_fraction, seed)
    train, validation = stratified_split(data.labels[rest], 0.2, seed)
    return ModelSplits(
        model="digits",
        train_images=data.images[rest][train],
        train_labels=data.labels[rest][train],
        validation_images=data.images[rest][validation],
        validation_labels=data.labels[rest][validation],
        pool_images=data.images[pool],
        pool_labels=data.labels[pool],
    )


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def brighten(images: np.ndarray, amount: float, _: np.random.Generator) -> np.ndarray:
    return _to_uint8(images.astype(np.float64) + amount)


def add_noise(images: np.ndarray, sigma: float, generator: np.random.Generator) -> np.ndarray:
    return _to_uint8(images.astype(np.float64) + generator.normal(0.0, sigma, images.shape))


def blur(images: np.ndarray, sigma: float, _: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return _to_uint8(gaussian_filter(images.astype(np.float64), sigma=(0, sigma, sigma), mode="nearest"))


def rotate(images: np.ndarray, degrees: float, generator: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import rotate as rotate_image

    signs = generator.choice([-1.0, 1.0], size=images.shape[0])
    rotated = [
        rotate_image(image.astype(np.float64), sign * degrees, reshape=False, order=1, mode="constant")
        for image, sign in zip(images, signs, strict=True)
    ]
    return _to_uint8(np.stack(rotated))


TRANSFORMS: dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "brightness": brighten,
    "noise": add_noise,
    "blur": blur,
    "rotation": rotate,
}


def window_images(
    splits: ModelSplits, shift: str | None, magnitude: float, size: int, generator: np.random.Generator
) -> np.ndarray:
    """One window of `size` pool images (without replacement), shifted by `shift` at `magnitude`."""
    pool = splits.pool_images
    if shift == "class_mix":
        mixed = round(size * magnitude)
        chosen = np.flatnonzero(np.isin(splits.pool_labels, MIX_CLASSES))
        rows = np.concatenate(
            [
                generator.choice(chosen, size=mixed, replace=mixed > chosen.size),
                generator.choice(pool.shape[0], size=size - mixed, replace=False),
            ]
        )
        return pool[rows]
    images = pool[generator.choice(pool.shape[0], size=size, replace=False)]
    if shift is None:
        return images
    return TRANSFORMS[shift](images, magnitude, generator)


# ------------------------------------------------------------------------ detection power (the paper)

SURFACE_POOL_PER_CLASS = 3334
"""Fresh surface-defect images per class in the power benchmark's pool (10,002: the largest window)."""
KNOCKOUT_CLASS = 0


@dataclass(frozen=True)
class ModelSplits:
    """Training (reference statistics, model), validation (reference outputs) and a held-out pool."""

    model: str
    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    pool_images: np.ndarray
    pool_labels: np.ndarray


def model_splits(model: str, seed: int) -> ModelSplits:
    """Digits: the three-way split of `digit_splits`. Surface-defects: the catalogue's dataset split
    as the pipeline splits it (20 % validation) and a pool generated from another seed."""
    if model == "digits":
        digits = digit_splits(seed)
        return ModelSplits(
            model,
            digits.train_images,
            digits.train_labels,
            digits.validation_images,
            digits.validation_labels,
            digits.pool_images,
            digits.pool_labels,
        )
    data = build(model)
    train, validation = stratified_split(data.labels, catalogue.get(model).training.validation_fraction, seed)
    pool = build_surface_defects(seed=10_000 + seed, per_class=SURFACE_POOL_PER_CLASS)
    return ModelSplits(
        model,
        data.images[train],
        data.labels[train],
        data.images[validation],
        data.labels[validation],
        pool.images,
        pool.labels,
    )


@dataclass(frozen=True)
class AffineRanges:
    """Ranges of the random transform, as the paper sets Keras' ImageDataGenerator."""

    rotation: float
    """degrees, uniform in +-rotation"""
    shift: float
    """fraction of the width / height, uniform in +-shift"""
    shear: float
    """degrees (Keras' unit), uniform in +-shear"""
    zoom: float
    """each axis scaled by a factor uniform in [1 - zoom, 1 + zoom]"""
    horizontal_flip: bool
    vertical_flip: bool


IMAGE_TRANSFORMS: dict[str, AffineRanges] = {
    "small": AffineRanges(10.0, 0.05, 0.1, 0.1, False, False),
    "medium": AffineRanges(40.0, 0.2, 0.2, 0.2, True, False),
    "large": AffineRanges(90.0, 0.4, 0.3, 0.4, True, True),
}
NOISE_SIGMAS: dict[str, float] = {"small": 1.0, "medium": 10.0, "large": 100.0}
FRACTIONS = (0.1, 0.5, 1.0)


@dataclass(frozen=True)
class PowerShift:
    family: str
    """`gaussian_noise`, `image` or `knockout` (`none` for the unshifted windows)."""
    strength: str
    """`small` / `medium` / `large` (knock-out: the fraction as text)."""
    fraction: float
    """Share of the window's images shifted (knock-out: share of the class's pool images removed)."""

    @property
    def label(self) -> str:
        if self.family == "none":
            return "none"
        if self.family == "knockout":
            return f"knockout {self.fraction:.0%}"
        return f"{self.family.replace('_', ' ')} {self.strength} {self.fraction:.0%}"


NO_SHIFT = PowerShift("none", "", 0.0)
PAPER_SHIFTS: tuple[PowerShift, ...] = (
    *(PowerShift("gaussian_noise", strength, fraction) for strength in NOISE_SIGMAS for fraction in FRACTIONS),
    *(PowerShift("image", strength, fraction) for strength in IMAGE_TRANSFORMS for fraction in FRACTIONS),
    *(PowerShift("knockout", f"{fraction:g}", fraction) for fraction in FRACTIONS),
)


def _affine(image: np.ndarray, ranges: AffineRanges, generator: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import affine_transform

    height, width = image.shape
    angle = math.radians(generator.uniform(-ranges.rotation, ranges.rotation))
    shear = math.radians(generator.uniform(-ranges.shear, ranges.shear))
    zoom_y, zoom_x = generator.uniform(1 - ranges.zoom, 1 + ranges.zoom, size=2)
    offset_y = generator.uniform(-ranges.shift, ranges.shift) * height
    offset_x = generator.uniform(-ranges.shift, ranges.shift) * width
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shearing = np.array([[1.0, 0.0], [math.sin(shear), math.cos(shear)]])
    # Output pixel -> input pixel, about the image centre (what a forward transform's inverse does).
    matrix = rotation @ shearing @ np.diag([zoom_y, zoom_x])
    centre = np.array([(height - 1) / 2, (width - 1) / 2])
    offset = centre - matrix @ centre + np.array([offset_y, offset_x])
    moved = affine_transform(image.astype(np.float64), matrix, offset=offset, order=1, mode="nearest")
    if ranges.horizontal_flip and generator.random() < 0.5:
        moved = moved[:, ::-1]
    if ranges.vertical_flip and generator.random() < 0.5:
        moved = moved[::-1, :]
    return moved


def transform_images(images: np.ndarray, strength: str, generator: np.random.Generator) -> np.ndarray:
    ranges = IMAGE_TRANSFORMS[strength]
    return _to_uint8(np.stack([_affine(image, ranges, generator) for image in images]))


def _draw(count: int, size: int, generator: np.random.Generator) -> np.ndarray:
    """`size` row indices of a pool of `count`: without replacement while the pool is large enough."""
    return generator.choice(count, size=size, replace=size > count)


def power_window(
    splits: ModelSplits, shift: PowerShift, size: int, generator: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One window of `size` pool images (and their labels) under `shift`."""
    rows = np.arange(splits.pool_images.shape[0])
    if shift.family == "knockout":
        of_class = np.flatnonzero(splits.pool_labels == KNOCKOUT_CLASS)
        removed = generator.choice(of_class, size=math.ceil(shift.fraction * of_class.size), replace=False)
        rows = np.setdiff1d(rows, removed)
    picked = rows[_draw(rows.size, size, generator)]
    images, labels = splits.pool_images[picked].copy(), splits.pool_labels[picked]
    if shift.family in ("none", "knockout"):
        return images, labels
    chosen = generator.choice(size, size=math.ceil(shift.fraction * size), replace=False)
    if shift.family == "gaussian_noise":
        images[chosen] = add_noise(images[chosen], NOISE_SIGMAS[shift.strength], generator)
    else:
        images[chosen] = transform_images(images[chosen], shift.strength, generator)
    return images, labels


# --------------------------------------------------------------------------------- large logs (speed)


def synthetic_rows(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """`rows` prediction-log rows: real digit feature rows resampled and jittered (5 % of each
    column's spread), predicted classes and confidences; `shift` moves every feature by that many sds."""
    generator = np.random.default_rng(seed)
    data = build("digits")
    base = features.drift_features(data.images)
    values = base.to_numpy()
    spread = values.std(axis=0)
    picks = generator.integers(0, values.shape[0], size=rows)
    jitter = generator.standard_normal((rows, values.shape[1]), dtype=np.float32) * (0.05 * spread)
    table = values[picks] + jitter + shift * spread
    frame = pd.DataFrame(table, columns=list(features.FEATURE_COLUMNS))
    names = np.asarray(catalogue.get("digits").class_names, dtype=object)
    labels = data.labels[picks]
    frame["prediction"] = labels.astype(np.int64)
    frame["predicted_class"] = pd.Categorical.from_codes(labels, categories=list(names))
    frame["confidence"] = np.clip(generator.beta(20, 1.2, size=rows), 0.0, 1.0)
    frame["model_version"] = pd.Categorical(["1"] * rows)
    frame["timestamp"] = pd.Timestamp("2026-11-19", tz="UTC") + pd.to_timedelta(np.sort(picks) % 86_400, unit="s")
    frame["request_id"] = pd.Series(generator.integers(0, 2**62, size=rows)).map("{:016x}".format)
    return frame


def write_log(frame: pd.DataFrame, store: Path, model: str, day: str, files: int) -> list[Path]:
    folder = store / model / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, part in enumerate(np.array_split(np.arange(len(frame)), files)):
        path = folder / f"part-{index:03d}.parquet"
        frame.iloc[part].to_parquet(path, index=False)
        paths.append(path)
    return paths
