"""ONNX files of a ReID model (the graph from :mod:`reidkit.inference.onnx_graph`) and how far
onnxruntime's features are from torch's on the same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from torch import nn

from ..evaluation.distance import l2_normalize
from ..fileio import atomic_write
from ..inference.embedder import OnnxRunner, TorchRunner
from ..inference.onnx_graph import check_opset, onnx_bytes
from ..model_card import ModelCard

__all__ = ["check_opset", "export_onnx", "max_abs_difference", "onnx_bytes", "random_batch", "real_batch"]


def export_onnx(model: nn.Module, input_size: tuple[int, int], path: str | Path, opset: int = 17,
                metadata: dict[str, str] | None = None, card: Optional[ModelCard] = None) -> Path:
    """Write ``model`` (eval mode, CPU) as ONNX with a dynamic batch axis; returns the path."""
    data = onnx_bytes(model, input_size, opset, metadata, card)
    return atomic_write(path, lambda f: f.write(data))


def max_abs_difference(model: nn.Module, onnx_model: str | Path | bytes, batch: np.ndarray) -> tuple[float, float]:
    """Largest absolute difference between torch and onnxruntime (a file or serialized model) on a
    uint8 (N, H, W, 3) batch: (raw features, L2-normalised features)."""
    want = TorchRunner(model)(batch)
    got = OnnxRunner(onnx_model)(batch)
    return float(np.abs(want - got).max()), float(np.abs(l2_normalize(want) - l2_normalize(got)).max())


def random_batch(input_size: tuple[int, int], n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *input_size, 3), dtype=np.uint8)


def real_batch(paths: Sequence[str | Path], input_size: tuple[int, int], preprocess: str = "loader"
               ) -> tuple[np.ndarray, list[str]]:
    """The readable images of ``paths`` resized to ``input_size`` (N, H, W, 3), and why the others were not."""
    from ..inference.preprocess import ImageReadError, load_resized

    images, failed = [], []
    for p in paths:
        try:
            images.append(load_resized(p, input_size, preprocess))
        except ImageReadError as e:
            failed.append(str(e))
    return (np.stack(images) if images else np.zeros((0, *input_size, 3), np.uint8)), failed
