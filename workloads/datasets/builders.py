"""How each dataset is built, in memory: `BUILDERS` maps a catalogue entry's `dataset` to its builder.

digits is real data bundled with scikit-learn (no download); surface-defects is generated from a
seed, so every store can build the same version again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from workloads.datasets.dataset import Dataset
from workloads.datasets.errors import UnknownDatasetError

if TYPE_CHECKING:
    import numpy as np


def build_digits(seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images; no download), scaled to uint8."""
    del seed  # real data: nothing to seed
    import numpy as np
    from sklearn.datasets import load_digits

    bunch: Any = load_digits()  # a Bunch (its stubs also allow the return_X_y tuple)
    # The scans count ink in 0..16; scale to the 0..255 every other image source uses.
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return Dataset(
        name="digits",
        images=images,
        labels=bunch.target.astype(np.int64),
        class_names=tuple(str(digit) for digit in range(10)),
        metadata={"source": "sklearn.datasets.load_digits", "scale": "0..16 -> 0..255"},
    )


SURFACE_DEFECT_CLASSES = ("clean", "scratch", "stain")


def generate_surface_patches(labels: np.ndarray, size: int, generator: np.random.Generator) -> np.ndarray:
    """Textured patches (uint8, (N, size, size)) with a scratch (label 1), a stain (2) or neither (0).

    Texture: a random base level, three low-frequency waves at random angles and fine grain — so
    the classifier has to find a thin line or a blob in a surface that is never flat.
    """
    import numpy as np

    count = labels.shape[0]
    ys, xs = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    base = generator.uniform(0.35, 0.65, size=(count, 1, 1))
    texture = np.zeros((count, size, size))
    for _ in range(3):
        angle = generator.uniform(0, np.pi, size=(count, 1, 1))
        frequency = generator.uniform(0.5, 3.0, size=(count, 1, 1)) * 2 * np.pi / size
        phase = generator.uniform(0, 2 * np.pi, size=(count, 1, 1))
        amplitude = generator.uniform(0.02, 0.06, size=(count, 1, 1))
        texture += amplitude * np.sin(frequency * (xs * np.cos(angle) + ys * np.sin(angle)) + phase)
    grain = generator.normal(0.0, 0.03, size=(count, size, size))
    images = base + texture + grain

    # Scratch: an anti-aliased segment, 1-2 px wide, brighter or darker than the surface.
    start = generator.uniform(4, size - 4, size=(count, 2))
    angle = generator.uniform(0, 2 * np.pi, size=count)
    length = generator.uniform(size * 0.35, size * 0.8, size=count)
    direction = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    end = np.clip(start + direction * length[:, None], 0, size - 1)
    segment = end - start
    relative_y = ys[None] - start[:, 0, None, None]
    relative_x = xs[None] - start[:, 1, None, None]
    squared = np.maximum((segment**2).sum(axis=1), 1e-9)[:, None, None]
    t = np.clip((relative_y * segment[:, 0, None, None] + relative_x * segment[:, 1, None, None]) / squared, 0, 1)
    distance = np.hypot(relative_y - t * segment[:, 0, None, None], relative_x - t * segment[:, 1, None, None])
    width = generator.uniform(0.8, 1.6, size=(count, 1, 1))
    scratch_strength = generator.uniform(0.2, 0.35, size=(count, 1, 1)) * generator.choice(
        [-1.0, 1.0], size=(count, 1, 1)
    )
    scratch = scratch_strength * np.clip(1.0 - distance / width, 0.0, 1.0)

    # Stain: a soft dark ellipse.
    center = generator.uniform(6, size - 6, size=(count, 2))
    radii = generator.uniform(2.5, 5.5, size=(count, 2))
    stain_strength = generator.uniform(0.15, 0.3, size=(count, 1, 1))
    ellipse = ((ys[None] - center[:, 0, None, None]) / radii[:, 0, None, None]) ** 2 + (
        (xs[None] - center[:, 1, None, None]) / radii[:, 1, None, None]
    ) ** 2
    stain = -stain_strength * np.exp(-ellipse)

    images = (
        images + np.where(labels[:, None, None] == 1, scratch, 0.0) + np.where(labels[:, None, None] == 2, stain, 0.0)
    )
    return np.rint(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def _qualified_name(function: Callable[..., Any]) -> str:
    """`module.function`: recorded in `dataset.json`, derived so that it names where the code is."""
    return f"{function.__module__}.{function.__qualname__}"


def build_surface_defects(seed: int = 0, per_class: int = 500, size: int = 32) -> Dataset:
    """Procedurally generated, seeded texture patches: `per_class` images of each class."""
    import numpy as np

    generator = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SURFACE_DEFECT_CLASSES), dtype=np.int64), per_class)
    generator.shuffle(labels)
    images = generate_surface_patches(labels, size, generator)
    return Dataset(
        name="surface-defects",
        images=images,
        labels=labels,
        class_names=SURFACE_DEFECT_CLASSES,
        metadata={"generator": _qualified_name(generate_surface_patches), "seed": seed, "per_class": per_class},
    )


BUILDERS: dict[str, Callable[..., Dataset]] = {
    "digits": build_digits,
    "surface-defects": build_surface_defects,
}


def require_known(name: str) -> None:
    """`UnknownDatasetError` naming the known datasets, unless a builder has this name."""
    if name not in BUILDERS:
        raise UnknownDatasetError(f"unknown dataset {name!r}: known datasets are {', '.join(BUILDERS)}")


def build(name: str, seed: int = 0) -> Dataset:
    """Build dataset `name` in memory; `UnknownDatasetError` naming the known ones otherwise."""
    require_known(name)
    return BUILDERS[name](seed=seed)
