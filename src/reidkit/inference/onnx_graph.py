"""A ReID model as an ONNX graph in memory: (N, 3, H, W) float 0-255 images in, raw (N, D) features out.

The pixel mean/std stay inside the graph, as in the torch model, so ``Embedder.from_onnx`` feeds
the same resized uint8 crops to both. The batch axis is dynamic; the input size is fixed and is
written to the metadata with the model card. ``reid export onnx`` (:mod:`reidkit.export`) writes
it to a file after checking it against torch; the embedders run it in onnxruntime directly.
"""

from __future__ import annotations

import io
import warnings
from typing import Optional

import torch
from torch import nn

from ..model_card import ONNX_KEY, ModelCard
from .fuse import static_same_padding

INPUT_NAME = "images"
OUTPUT_NAME = "features"
MIN_OPSET = 11  # constant padding and the ops our backbones need


def check_opset(opset: int) -> int:
    """An opset the (TorchScript) exporter writes for our models, else a ValueError naming the range."""
    from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET as top

    if not MIN_OPSET <= opset <= top:
        raise ValueError(f"--opset {opset}: this torch exports ONNX opsets {MIN_OPSET} to {top}")
    return opset


def onnx_bytes(model: nn.Module, input_size: tuple[int, int], opset: int = 17,
               metadata: dict[str, str] | None = None, card: Optional[ModelCard] = None) -> bytes:
    """``model`` (eval mode, CPU) as a serialized ONNX model with a dynamic batch axis, its model
    ``card`` (when given) in the metadata under ``reidkit.card``."""
    import onnx

    check_opset(opset)
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
