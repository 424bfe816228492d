"""Encode test images as the files clients send."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray, size: tuple[int, int] | None = None, colour: bool = False) -> bytes:
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L")
    if size is not None:
        picture = picture.resize(size, Image.Resampling.NEAREST)
    if colour:
        picture = picture.convert("RGB")
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()
