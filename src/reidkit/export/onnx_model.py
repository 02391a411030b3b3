"""ONNX export of a ReID model: (N, 3, H, W) float 0-255 images in, raw (N, D) features out.

The pixel mean/std stay inside the graph, as in the torch model, so ``Embedder.from_onnx`` feeds
the same resized uint8 crops to both. The batch axis is dynamic; the input size is fixed and is
also written to the model's metadata with where the weights came from.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..fileio import atomic_write
from ..model_card import ONNX_KEY, ModelCard

INPUT_NAME = "images"
OUTPUT_NAME = "features"
MIN_OPSET = 11  # constant padding and the ops our backbones need


def check_opset(opset: int) -> int:
    """An opset the (TorchScript) exporter writes for our models, else a ValueError naming the range."""
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET as top

    if not MIN_OPSET <= opset <= top:
        raise ValueError(f"--opset {opset}: this torch exports ONNX opsets {MIN_OPSET} to {top}")
    return opset


def export_onnx(model: nn.Module, input_size: tuple[int, int], path: str | Path, opset: int = 17,
                metadata: dict[str, str] | None = None, card: Optional[ModelCard] = None) -> Path:
    """Write ``model`` (eval mode, CPU) as ONNX with a dynamic batch axis; returns the path."""
    data = onnx_bytes(model, input_size, opset, metadata, card)
    return atomic_write(path, lambda f: f.write(data))


def onnx_bytes(model: nn.Module, input_size: tuple[int, int], opset: int = 17,
               metadata: dict[str, str] | None = None, card: Optional[ModelCard] = None) -> bytes:
    """``model`` (eval mode, CPU) as a serialized ONNX model with a dynamic batch axis, its model
    ``card`` (when given) in the metadata under ``reidkit.card``."""
    import onnx

    check_opset(opset)
    from ..inference.fuse import static_same_padding

    h, w = input_size
    dummy = torch.rand(2, 3, h, w) * 255
    model = static_same_padding(model.eval().cpu().to(memory_format=torch.contiguous_format), dummy)
    buf = io.BytesIO()
    # The TorchScript exporter is deprecated in favour of torch.export's (which needs onnxscript);
    # with torch pinned it is the one measured here (features within 3e-5 of torch), so its
    # deprecation warning is noise for users.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # A constant zero-pad exports with a reversed Slice of its pads that the exporter says it
        # cannot fold; onnxruntime folds it when loading, so the notice means nothing to a user.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(model, (dummy,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=opset, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    meta = {"reidkit.input_size": f"{h}x{w}", "reidkit.input": "RGB float 0-255, NCHW", **(metadata or {}),
            **({ONNX_KEY: card.to_json()} if card is not None else {})}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return proto.SerializeToString()


def max_abs_difference(model: nn.Module, onnx_model: str | Path | bytes, batch: np.ndarray) -> tuple[float, float]:
    """Largest absolute difference between torch and onnxruntime (a file or serialized model) on a
    uint8 (N, H, W, 3) batch: (raw features, L2-normalised features)."""
    from ..inference.embedder import OnnxRunner, TorchRunner, normalize

    want = TorchRunner(model)(batch)
    got = OnnxRunner(onnx_model)(batch)
    return float(np.abs(want - got).max()), float(np.abs(normalize(want) - normalize(got)).max())


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
