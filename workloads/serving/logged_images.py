"""The image the model saw, kept in the prediction log as PNG bytes, so it can be labelled later.

Drift features say that a day changed, not what its images show: a person labelling a prediction
needs the image itself, and a dataset built from production traffic needs its pixels. Each log row
therefore carries `image_png`, the request's image exactly as the model received it — the model's
input size (`/classify_image` resamples first), grayscale, 8 bits — encoded as a PNG file. PNG
because it is lossless (the bytes decode to the pixels the model saw), self-describing (the size is
in the file, no shape column), compresses these small images well, and is what a labelling tool
displays as it is: the labelling queue writes the bytes out unchanged (`workloads.labels.queue`).

Size bound: an image of more than `max_pixels` pixels is logged without its PNG (null), so a model
with large inputs does not multiply its log's size; the default (65,536: 256 x 256) keeps every
catalogue model's images (8 x 8, 32 x 32) and a 224 x 224 network's. The log's writes are bounded
already by the buffered images' bytes (`MLOPS_LOG_FLUSH_ROWS`, 32 MiB of images per write), and the
predictions bucket expires after the stack's retention: only labelled images need keeping longer,
and the queue copies those out.

Float images (intensities in [0, 1]) are stored as round(255 x value): 8 bits is what PNG files
and labelling tools show, and what the datasets hold.
"""

from __future__ import annotations

import io

import numpy as np

IMAGE_COLUMN = "image_png"
DEFAULT_MAX_PIXELS = 256 * 256


def as_uint8(images: np.ndarray) -> np.ndarray:
    """A validated (N, H, W) batch (uint8, or floats in [0, 1]) as uint8 pixels."""
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def encode_png(images: np.ndarray, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[bytes | None]:
    """One PNG file per image of the (N, H, W) batch; None for each when an image exceeds `max_pixels`."""
    from PIL import Image

    if images.shape[1] * images.shape[2] > max_pixels:
        return [None] * len(images)
    encoded: list[bytes | None] = []
    for image in as_uint8(images):
        sink = io.BytesIO()
        # compress_level 1: these images are tiny, level 6 costs ~3x the CPU for a few bytes less.
        Image.fromarray(image).save(sink, format="PNG", compress_level=1)
        encoded.append(sink.getvalue())
    return encoded


def decode_png(data: bytes) -> np.ndarray:
    """The (H, W) uint8 pixels of one logged image."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)
