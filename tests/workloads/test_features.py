"""The shared features module: one preprocessing and one drift-feature definition, deterministic."""

from __future__ import annotations

import numpy as np
import pytest

from workloads import features
from workloads.datasets.builders import build


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return build("digits").images[:200]


def test_preprocess_gives_normalised_float32_channels(digits: np.ndarray) -> None:
    tensor = features.preprocess(digits)
    assert tensor.dtype == np.float32
    assert tensor.shape == (200, 1, 8, 8)
    assert tensor.flags["C_CONTIGUOUS"]
    assert tensor.min() >= -1.0 and tensor.max() <= 1.0
    np.testing.assert_allclose(tensor[:, 0], (digits / 255.0 - 0.5) / 0.5, rtol=0, atol=1e-6)


def test_uint8_and_unit_float_images_give_identical_results(digits: np.ndarray) -> None:
    as_float = digits.astype(np.float64) / 255.0
    np.testing.assert_array_equal(features.preprocess(digits), features.preprocess(as_float))
    np.testing.assert_allclose(
        features.drift_features(digits).to_numpy(), features.drift_features(as_float).to_numpy(), atol=1e-6
    )


def test_drift_features_have_fixed_columns_and_are_deterministic(digits: np.ndarray) -> None:
    table = features.drift_features(digits)
    assert list(table.columns) == list(features.FEATURE_COLUMNS)
    assert len(table.columns) >= 16
    assert len(table) == len(digits)
    assert table.notna().all().all()
    assert all(str(dtype) == "float64" for dtype in table.dtypes)
    again = features.drift_features(digits.copy())
    assert table.equals(again)
    # Row independence: the features of one image do not depend on the rest of the batch (up to
    # float32 summation order), so serving's small batches match the training-time reference.
    np.testing.assert_allclose(
        features.drift_features(digits[5:6]).to_numpy(), table.iloc[5:6].to_numpy(), rtol=1e-5, atol=1e-6
    )


def test_drift_features_move_with_the_shifts_the_drift_job_must_see(digits: np.ndarray) -> None:
    base = features.drift_features(digits).mean()
    brighter = features.drift_features(np.clip(digits.astype(np.int32) + 60, 0, 255).astype(np.uint8)).mean()
    assert brighter["brightness_mean"] > base["brightness_mean"] + 0.15
    padded = np.pad(digits, ((0, 0), (1, 1), (1, 1)), mode="edge").astype(np.float64)
    blurred = sum(padded[:, dy : dy + 8, dx : dx + 8] for dy in range(3) for dx in range(3)) / 9.0
    blurred_features = features.drift_features(blurred.astype(np.uint8)).mean()
    assert blurred_features["laplacian_variance"] < 0.5 * base["laplacian_variance"]
    shifted = features.drift_features(np.roll(digits, 2, axis=2)).mean()
    assert shifted["center_of_mass_x"] > base["center_of_mass_x"] + 0.1
    assert not np.allclose(shifted[list(features.EMBEDDING_COLUMNS)], base[list(features.EMBEDDING_COLUMNS)])


def test_embedding_is_model_independent_across_image_sizes() -> None:
    small = np.kron(np.eye(8, dtype=np.uint8) * 255, np.ones((1, 1), dtype=np.uint8))[None]
    large = np.kron(small[0], np.ones((4, 4), dtype=np.uint8))[None]  # same picture at 32x32
    np.testing.assert_allclose(features.embed(small), features.embed(large), atol=1e-5)
    np.testing.assert_allclose(features.resample(large, 8, 8), small / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    ("images", "fragment"),
    [
        (np.zeros((8, 8), dtype=np.uint8), "shape (N, H, W)"),
        (np.zeros((0, 8, 8), dtype=np.uint8), "at least one image"),
        (np.full((2, 8, 8), 3.0), "must lie in [0, 1]"),
        (np.full((2, 8, 8), np.nan), "NaN"),
        (np.zeros((2, 8, 8), dtype=np.int16), "dtype int16"),
    ],
)
def test_bad_images_get_one_clear_error(images: np.ndarray, fragment: str) -> None:
    with pytest.raises(features.InvalidImagesError) as caught:
        features.preprocess(images)
    assert fragment in str(caught.value)
    with pytest.raises(ValueError):
        features.drift_features(images)
