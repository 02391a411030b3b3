"""Image decoding and resizing for inference, matching fast-reid's two preprocessing paths.

``loader`` is fast-reid's evaluation loader (PIL decode, PIL bicubic resize with antialiasing,
as torchvision's ``Resize`` does on PIL images); ``demo`` is its ``demo/predictor.py`` path (OpenCV
decode, ``cv2.resize`` with ``INTER_CUBIC``, no antialiasing). Both give RGB uint8 arrays of the
model's input size; the model itself subtracts the pixel mean and divides by the pixel std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from ..images import ImageReadError, read_image as decode, read_image_bytes as decode_bytes

__all__ = ["ImageReadError", "check_image", "check_preprocess", "load_resized", "read_image", "read_image_bytes",
           "resize"]

Preprocess = Literal["loader", "demo"]
PREPROCESS_CHOICES = ("loader", "demo")


def check_preprocess(name: str) -> str:
    if name not in PREPROCESS_CHOICES:
        raise ValueError(f"unknown preprocessing {name!r}: expected one of {', '.join(PREPROCESS_CHOICES)}")
    return name


def check_image(image: np.ndarray, index: int = 0) -> np.ndarray:
    """An RGB uint8 HxWx3 array (a grey HxW image is expanded), or a clear error."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or min(image.shape[:2]) < 1:
        raise ValueError(f"image {index}: expected an RGB uint8 array of shape (H, W, 3), "
                         f"got dtype {image.dtype} shape {image.shape}")
    return image


def resize(image: np.ndarray, size_hw: tuple[int, int], method: str = "loader") -> np.ndarray:
    """``image`` (RGB uint8) resized to ``size_hw`` the way fast-reid's ``method`` path does."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return np.ascontiguousarray(image)
    if method == "demo":
        import cv2

        return cv2.resize(image, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC))


def decoder_of(method: str) -> str:
    """The image decoder of fast-reid's preprocessing path ``method``: OpenCV for ``demo``, else PIL."""
    return "cv2" if method == "demo" else "pil"


def read_image(path: str | Path, method: str = "loader") -> np.ndarray:
    """Decode ``path`` to RGB uint8 with the decoder of ``method``'s path (see ``reidkit.images``)."""
    return decode(path, decoder_of(method))


def read_image_bytes(data: bytes, method: str = "loader", name: str = "image") -> np.ndarray:
    """:func:`read_image` of a file's bytes held in memory; errors name it ``name``."""
    return decode_bytes(data, decoder_of(method), name)


def load_resized(path: str | Path, size_hw: tuple[int, int], method: str = "loader") -> np.ndarray:
    return resize(read_image(path, method), size_hw, method)
