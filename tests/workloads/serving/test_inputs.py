"""Request decoding and the training-serving skew guard, without a server."""

from __future__ import annotations

import numpy as np
import pytest

from tests.workloads.serving.images import jpeg_bytes, png_bytes
from workloads import features
from workloads.datasets.builders import build
from workloads.serving.inputs import InvalidRequestError, decode_array, decode_image_file, model_inputs

SHAPE = (8, 8)


@pytest.fixture(scope="module")
def digit_images() -> np.ndarray:
    return build("digits").images[:50]


def test_serving_and_training_give_identical_tensors_for_the_same_image(digit_images: np.ndarray) -> None:
    """The skew guard: the pipeline's preprocess step feeds `features.preprocess(images)` to training;
    the service decodes the same images from PNG files and from JSON arrays. Bit-identical tensors."""
    training_tensor = features.preprocess(digit_images)
    from_files = np.concatenate(
        [model_inputs(decode_image_file(png_bytes(image), SHAPE, 1 << 20)) for image in digit_images]
    )
    from_arrays = model_inputs(decode_array(digit_images.tolist(), "uint8", SHAPE, 64))
    as_floats = model_inputs(decode_array((digit_images / 255.0).tolist(), "float32", SHAPE, 64))
    np.testing.assert_array_equal(from_files, training_tensor)
    np.testing.assert_array_equal(from_arrays, training_tensor)
    np.testing.assert_allclose(as_floats, training_tensor, atol=1e-6)
    # The drift features the service logs are the reference table's features for the same image.
    decoded = np.concatenate([decode_image_file(png_bytes(image), SHAPE, 1 << 20) for image in digit_images])
    np.testing.assert_array_equal(
        features.drift_features(decoded).to_numpy(), features.drift_features(digit_images).to_numpy()
    )


def test_larger_and_colour_files_are_converted_to_grayscale_at_the_model_size(digit_images: np.ndarray) -> None:
    decoded = decode_image_file(jpeg_bytes(digit_images[0], size=(32, 32), colour=True), SHAPE, 1 << 20)
    assert decoded.shape == (1, 8, 8)
    assert decoded.dtype == np.float32
    # Upscaled 4x with nearest neighbour then area-averaged back: close to the original (JPEG is lossy).
    assert np.abs(decoded[0] * 255.0 - digit_images[0]).mean() < 12


@pytest.mark.parametrize(
    ("payload", "dtype", "status", "fragment"),
    [
        ([[1, 2], [3, 4]], "uint8", 422, "shape"),
        ([[[0] * 8] * 8] * 65, "uint8", 413, "limit"),
        ([[0.5] * 8] * 8, "uint8", 422, "integer"),
        ([[300] * 8] * 8, "uint8", 422, "between 0 and 255"),
        ([[2.0] * 8] * 8, "float32", 422, "between 0 and 1"),
        ([[0] * 8] * 8, "int64", 422, "dtype"),
        ([["x"] * 8] * 8, "uint8", 422, "numbers"),
        ([[0] * 8] * 7 + [[0] * 7], "uint8", 422, "ragged"),
        ([[10**400] * 8] * 8, "uint8", 422, "only numbers"),
        ([[True] * 8] * 8, "uint8", 422, "only numbers"),
        ([[[[0]]]], "uint8", 422, "shape"),
        ("not an array", "uint8", 422, "JSON array"),
    ],
)
def test_invalid_arrays_are_refused_with_a_status_and_no_values(
    payload: object, dtype: str, status: int, fragment: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_array(payload, dtype, SHAPE, 64)
    assert caught.value.status == status
    assert fragment in str(caught.value)
    assert "300" not in str(caught.value) and "'x'" not in str(caught.value)


def test_oversized_images_are_refused_before_decoding(digit_images: np.ndarray) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_image_file(jpeg_bytes(digit_images[0], size=(64, 64)), SHAPE, max_pixels=1000)
    assert caught.value.status == 413
