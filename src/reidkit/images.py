"""Decoding image files: the one place reidkit reads a picture from disk.

Every command (extraction, galleries, evaluation, training, frames folders, pictures of results)
goes through :func:`read_image`, so every one of them treats a bad file the same way: an
:class:`ImageReadError` naming the file and what is wrong, which callers skip and report.

- Size first: the header is read before any pixel, and an image of more than
  :data:`MAX_PIXELS` pixels is refused (a 30000x30000 PNG of a few KB, a "decompression bomb",
  would otherwise take gigabytes). OpenCV's decoder is only reached after that check.
- Every pixel format becomes RGB uint8: grey, palette, grey/RGB + alpha (alpha dropped, as
  OpenCV's colour decoding does), CMYK, and 16-bit images, which are scaled to 8 bits (PIL
  alone would clip them to white).

Two decoders, matching fast-reid's two preprocessing paths: ``pil`` (its evaluation loader)
and ``cv2`` (its ``demo/predictor.py``, OpenCV's ``imread``).
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

#: Largest image, in pixels, that is decoded (an 8K frame has 33 million).
MAX_PIXELS = 64_000_000
DECODERS = ("pil", "cv2")


class ImageReadError(ValueError):
    """A file that is missing, not a decodable image, or too large to decode."""


def _header_size(source, label) -> tuple[int, int]:
    """(width, height) from the header of ``source`` (a path or a binary file), without decoding pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, by our limit
            with Image.open(source) as im:
                return im.size
    except Image.DecompressionBombError as e:  # PIL's own, stricter-than-ours-times-two limit
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise ImageReadError(_too_large(label, f"{int(found.group(1)):,}" if found else "too many")) from None
    except Exception as e:  # PIL's format plugins raise many types for broken files
        raise ImageReadError(f"{label}: not a readable image ({_reason(e)})") from None


def _too_large(path, pixels: str) -> str:
    return (f"{path}: {pixels} pixels, more than the limit of {MAX_PIXELS // 1_000_000} million "
            "(a decompression bomb?); not decoded")


def _reason(e: Exception) -> str:
    text = re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e)).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def check_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file within :data:`MAX_PIXELS`, or an :class:`ImageReadError`."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    return _checked_size(path, path)


def _checked_size(source, label) -> tuple[int, int]:
    width, height = _header_size(source, label)
    if width * height > MAX_PIXELS:
        raise ImageReadError(_too_large(label, f"{width}x{height}"))
    if width < 1 or height < 1:
        raise ImageReadError(f"{label}: empty image ({width}x{height})")
    return width, height


def to_rgb8(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode as an RGB uint8 array; 16-bit and 32-bit grey are scaled, not clipped."""
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        values = np.asarray(im)
        if im.mode == "F":
            grey = np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8)
        else:
            # 16 bits in (PNG, TIFF); as OpenCV does, keep the high byte.
            grey = (np.clip(values.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def read_image(path: str | Path, decoder: str = "pil") -> np.ndarray:
    """Decode ``path`` to an RGB uint8 (H, W, 3) array with ``decoder`` (``pil`` or ``cv2``)."""
    _check_decoder(decoder)
    path = Path(path)
    check_size(path)
    if decoder == "cv2":
        import cv2

        return _from_bgr(cv2.imread(str(path), cv2.IMREAD_COLOR), path)
    return _decode_pil(path, path)


def read_image_bytes(data: bytes, decoder: str = "pil", name: str = "image") -> np.ndarray:
    """:func:`read_image` of a file's bytes held in memory (an upload), with the same checks;
    errors name the file ``name``."""
    _check_decoder(decoder)
    if not data:
        raise ImageReadError(f"{name}: empty file")
    _checked_size(io.BytesIO(data), name)
    if decoder == "cv2":
        import cv2

        return _from_bgr(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), name)
    return _decode_pil(io.BytesIO(data), name)


def _check_decoder(decoder: str) -> None:
    if decoder not in DECODERS:
        raise ValueError(f"unknown image decoder {decoder!r}: expected one of {', '.join(DECODERS)}")


def _from_bgr(bgr: np.ndarray | None, label) -> np.ndarray:
    if bgr is None:
        raise ImageReadError(f"{label}: not a readable image (OpenCV cannot decode it)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _decode_pil(source, label) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                im.load()
                return to_rgb8(im)
    except Exception as e:
        raise ImageReadError(f"{label}: not a readable image ({_reason(e)})") from None


def read_pil(path: str | Path) -> Image.Image:
    """:func:`read_image` with the ``pil`` decoder, as a PIL RGB image (for training transforms)."""
    return Image.fromarray(read_image(path, "pil"))
