"""The stratified train/validation split: the pipeline, the local loop and the benchmarks share it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def stratified_split(labels: np.ndarray, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation): each class contributes `validation_fraction` of its rows."""
    import numpy as np

    generator = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    validation: list[np.ndarray] = []
    for value in np.unique(labels):
        rows = np.flatnonzero(labels == value)
        generator.shuffle(rows)
        held_out = max(1, round(rows.shape[0] * validation_fraction)) if rows.shape[0] > 1 else 0
        validation.append(rows[:held_out])
        train.append(rows[held_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))
