"""Turn request bodies into validated image batches: uint8 or [0, 1] float arrays of shape (N, H, W).

Two ways in: an image file (PNG or JPEG, any size and colour mode: converted to grayscale and
resampled to the model's input size with `features.resample`) and a JSON array (shape and dtype
checked, never resampled: an array is a promise about the model's input). What the model then sees
is `features.preprocess` of that batch — the same function the training pipeline uses — and what
the prediction log records is `features.drift_features` of it, the same function the drift job and
the reference table use.

Every refusal is an `InvalidRequestError` with an HTTP status and a message that describes what was
wrong in terms of shapes, types and sizes, never the submitted values themselves.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from workloads import features

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
ARRAY_DTYPES = ("uint8", "float32")
"""What a JSON array may declare: uint8 pixels 0-255, or float intensities in [0, 1]."""


class InvalidRequestError(ValueError):
    """The request cannot be classified; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_image_file(data: bytes, image_shape: tuple[int, int], max_pixels: int) -> np.ndarray:
    """PNG/JPEG bytes → one grayscale image at the model's size, shape (1, H, W).

    uint8 when the file already has the model's size (bit-identical to a dataset image saved as
    PNG), float32 in [0, 1] after resampling otherwise.
    """
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidRequestError("the image file is empty")
    if not (data.startswith(PNG_SIGNATURE) or data.startswith(JPEG_SIGNATURE)):
        raise InvalidRequestError("the file is not a PNG or JPEG image", status=415)
    try:
        with warnings.catch_warnings():
            # PIL warns (DecompressionBombWarning) before it errors; our own limit applies first.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidRequestError(
                    f"the image has {width}x{height} pixels, more than the limit of {max_pixels} "
                    "(MLOPS_MAX_IMAGE_PIXELS)",
                    status=413,
                )
            image.load()
            grayscale = np.asarray(image.convert("L"), dtype=np.uint8)
    except InvalidRequestError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        # Truncated or corrupt data: PIL's own messages can quote header bytes, so say it plainly.
        raise InvalidRequestError(
            f"the {_format_name(data)} image is truncated or corrupt and cannot be decoded"
        ) from None
    batch = grayscale[np.newaxis, :, :]
    if batch.shape[1:] == tuple(image_shape):
        return batch
    return features.resample(batch, *image_shape)


def _format_name(data: bytes) -> str:
    return "PNG" if data.startswith(PNG_SIGNATURE) else "JPEG"


def decode_array(
    values: Any,
    dtype: str,
    image_shape: tuple[int, int],
    max_images: int,
) -> np.ndarray:
    """A JSON array of one image (H, W) or a batch (N, H, W) → a checked (N, H, W) array."""
    if dtype not in ARRAY_DTYPES:
        raise InvalidRequestError(f"unsupported dtype: use one of {', '.join(ARRAY_DTYPES)}", status=422)
    if not isinstance(values, list):
        raise InvalidRequestError("`image` must be a JSON array of pixel rows", status=422)
    try:
        # One C-level pass; numpy refuses ragged nesting with ValueError.
        array = np.array(values)
    except (ValueError, TypeError, OverflowError):
        raise InvalidRequestError("the array is ragged: every row must have the same length", status=422) from None
    if array.dtype.kind not in "iuf":
        # Strings, nulls, booleans, objects - or integers too large for 64 bits (object dtype).
        raise InvalidRequestError("the array must contain only numbers (within the pixel range)", status=422)
    height, width = image_shape
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[1:] != (height, width) or array.shape[0] == 0:
        raise InvalidRequestError(
            f"expected an array of shape ({height}, {width}) or (N, {height}, {width}), "
            f"got shape {tuple(np.shape(values))}",
            status=422,
        )
    if array.shape[0] > max_images:
        raise InvalidRequestError(
            f"{array.shape[0]} images in one request, more than the limit of {max_images} "
            "(MLOPS_MAX_IMAGES_PER_REQUEST)",
            status=413,
        )
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise InvalidRequestError("the array contains NaN or infinite values", status=422)
    if dtype == "uint8":
        if np.any(array != np.floor(array)) or array.min() < 0 or array.max() > 255:
            raise InvalidRequestError("dtype uint8 needs integer pixel values between 0 and 255", status=422)
        return array.astype(np.uint8)
    if array.min() < 0.0 or array.max() > 1.0:
        raise InvalidRequestError("dtype float32 needs intensities between 0 and 1", status=422)
    return array.astype(np.float32)


def model_inputs(images: np.ndarray) -> np.ndarray:
    """What the model's forward pass receives: the shared preprocessing, nothing else."""
    try:
        return features.preprocess(images)
    except features.InvalidImagesError as error:
        raise InvalidRequestError(str(error), status=422) from None
