"""A hand-crafted, training-free embedder: HSV colour histograms of horizontal stripes.

The classic ReID baseline before deep features; used by the demo and as a floor that any
trained model must beat. Follows the ``Embedder`` interface: RGB uint8 images in, L2-normalised
float32 features out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from ..evaluation.distance import l2_normalize


class ColorHistogramEmbedder:
    """Concatenated HSV histograms of ``stripes`` horizontal bands of the central ``centre`` fraction
    of columns of a resized crop."""

    def __init__(self, stripes: int = 6, bins: tuple[int, int, int] = (8, 4, 4), size: tuple[int, int] = (64, 128),
                 centre: float = 0.5, foreground_distance: float = 40.0):
        self.foreground_distance = foreground_distance
        self.stripes = stripes
        self.centre = centre
        self.bins = bins
        self.size = size

    @property
    def dim(self) -> int:
        return self.stripes * int(np.prod(self.bins))

    def _one(self, image: np.ndarray) -> np.ndarray:
        small = Image.fromarray(image).resize(self.size, Image.BILINEAR)
        rgb = np.asarray(small, np.float32)
        hsv = np.asarray(small.convert("HSV"), np.int64)
        # Pedestrian crops are centred: the side columns are background. Pixels of the centre whose
        # colour is far from the side columns' median count as the person.
        margin = int(round(rgb.shape[1] * (1 - self.centre) / 2))
        sides = np.concatenate([rgb[:, :margin], rgb[:, rgb.shape[1] - margin:]], axis=1).reshape(-1, 3)
        background = np.median(sides, axis=0)
        rgb, hsv = rgb[:, margin:rgb.shape[1] - margin], hsv[:, margin:hsv.shape[1] - margin]
        weight = (np.linalg.norm(rgb - background, axis=2) > self.foreground_distance).astype(np.float32)
        b = np.array(self.bins)
        q = hsv * b // 256
        code = (q[..., 0] * b[1] + q[..., 1]) * b[2] + q[..., 2]
        band = np.arange(hsv.shape[0]) * self.stripes // hsv.shape[0]
        flat = (band[:, None] * int(np.prod(b)) + code).ravel()
        hist = np.bincount(flat, weights=weight.ravel(), minlength=self.dim).astype(np.float32)
        return np.sqrt(hist)

    def embed_files(self, paths: Sequence[str | Path], progress: Callable[[int], None] | None = None
                    ) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
        """``(feats, ok, failed)`` of image files, as ``Embedder.embed_files`` gives them."""
        from ..images import ImageReadError, read_image

        images, ok, failed = [], [], []
        for i, path in enumerate(paths):
            try:
                images.append(read_image(path))
                ok.append(i)
            except ImageReadError as e:
                failed.append((i, str(e)))
            if progress is not None:
                progress(1)
        return self.embed(images), ok, failed

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32, L2-normalised."""
        feats = np.stack([self._one(np.asarray(im, np.uint8)) for im in images]) if len(images) else \
            np.zeros((0, self.dim), np.float32)
        return l2_normalize(feats)
