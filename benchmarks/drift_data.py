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

Speed (`benchmarks/drift.py`): prediction logs of any size in the serving layout, built by
resampling real digit feature rows and jittering them (continuous values, the real columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workloads import catalogue, datasets, features

SHIFTS: dict[str, tuple[float, float, float]] = {
    "brightness": (3.0, 8.0, 40.0),
    "noise": (3.0, 8.0, 24.0),
    "blur": (0.25, 0.5, 1.0),
    "rotation": (2.0, 6.0, 20.0),
    "class_mix": (0.1, 0.3, 0.6),
}
MIX_CLASSES = (0, 1)


@dataclass(frozen=True)
class DigitSplits:
    train_images: np.ndarray
    train_labels: np.ndarray
    validation_images: np.ndarray
    validation_labels: np.ndarray
    pool_images: np.ndarray
    pool_labels: np.ndarray


def digit_splits(seed: int = 0, pool_fraction: float = 0.3) -> DigitSplits:
    data = datasets.build("digits")
    rest, pool = datasets.stratified_split(data.labels, pool_fraction, seed)
    train, validation = datasets.stratified_split(data.labels[rest], 0.2, seed)
    return DigitSplits(
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
    splits: DigitSplits, shift: str | None, magnitude: float, size: int, generator: np.random.Generator
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


# --------------------------------------------------------------------------------- large logs (speed)


def synthetic_rows(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """`rows` prediction-log rows: real digit feature rows resampled and jittered (5 % of each
    column's spread), predicted classes and confidences; `shift` moves every feature by that many sds."""
    generator = np.random.default_rng(seed)
    data = datasets.build("digits")
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
