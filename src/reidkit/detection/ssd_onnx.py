"""A TF Object Detection API SSD as an ONNX model plus numpy anchors, decoding and NMS.

OpenCV DNN runs the frozen graph at ~30 frames/s on 2 cores; onnxruntime runs the same network
several times faster, but TensorFlow's converter needs TensorFlow (1.3 GB). This module converts
the convolutional part itself: the frozen graph is read with :mod:`.tf_graph`, every
``Conv2D``/``DepthwiseConv2dNative`` becomes an ONNX ``Conv`` (NHWC weights transposed, TF's
``SAME`` padding made explicit for the fixed input size, the following ``FusedBatchNorm`` or
``BiasAdd`` folded into it), ``Relu6`` a ``Clip``, ``Add`` an ``Add``. The box and class
predictions of each feature map are flattened in TF's order (row, column, anchor) and
concatenated. Anchors, box decoding (scales 10, 10, 5, 5) and per-class NMS follow
TF's ``ssd_anchor_generator``, ``FasterRcnnBoxCoder`` and ``multiclass_non_max_suppression``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .ssd_text_graph import SSDSpec, anchor_sizes
from .tf_graph import GraphDefError, TFNode

CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
BOX_SCALES = np.array([10.0, 10.0, 5.0, 5.0], np.float32)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of TF's SAME padding: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return out, total // 2, total - total // 2


class _Converter:
    def __init__(self, graph: dict[str, TFNode], input_size: tuple[int, int]):
        import onnx
        from onnx import helper, numpy_helper

        self.onnx, self.helper, self.numpy_helper = onnx, helper, numpy_helper
        self.graph = graph
        self.nodes: list = []
        self.weights: list = []
        self.done: dict[str, tuple[str, tuple[int, int, int]]] = {}
        width, height = input_size
        self.done["<input>"] = ("input", (3, height, width))

    def resolve(self, name: str) -> str:
        """Through ``Identity`` chains; anything from the preprocessing scope is the input."""
        name = name.split(":")[0].lstrip("^")
        while name in self.graph and self.graph[name].op == "Identity" and self.graph[name].inputs:
            name = self.graph[name].inputs[0].split(":")[0].lstrip("^")
        if name.startswith("Preprocessor/") or (name in self.graph and self.graph[name].op == "Placeholder"):
            return "<input>"
        if name not in self.graph:
            raise GraphDefError(f"node {name!r} is referenced but not in the graph")
        return name

    def const(self, name: str) -> np.ndarray:
        node = self.graph[self.resolve(name)]
        value = node.attrs.get("value")
        if node.op != "Const" or not isinstance(value, np.ndarray):
            raise GraphDefError(f"{node.name}: expected a constant tensor, found a {node.op}")
        return value.astype(np.float32)

    def initializer(self, name: str, array: np.ndarray) -> str:
        array = np.asarray(array)
        array = array if array.dtype == np.int64 else array.astype(np.float32)
        self.weights.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, name: str) -> tuple[str, tuple[int, int, int]]:
        """ONNX tensor name and (C, H, W) of TF node ``name``, emitting what it needs first."""
        name = self.resolve(name)
        if name in self.done:
            return self.done[name]
        node = self.graph[name]
        if node.op in CONV_OPS:
            result = self.conv(node, None)
        elif node.op in ("FusedBatchNorm", "FusedBatchNormV3", "BiasAdd"):
            source = self.graph[self.resolve(node.inputs[0])]
            if source.op not in CONV_OPS:
                raise GraphDefError(f"{name}: a {node.op} after a {source.op} is not supported (only after a convolution)")
            result = self.conv(source, node)
        elif node.op == "Relu":
            x, shape = self.emit(node.inputs[0])
            self.nodes.append(self.helper.make_node("Relu", [x], [name]))
            result = (name, shape)
        elif node.op == "Relu6":
            x, shape = self.emit(node.inputs[0])
            lo, hi = self.initializer(f"{name}/min", np.float32(0)), self.initializer(f"{name}/max", np.float32(6))
            self.nodes.append(self.helper.make_node("Clip", [x, lo, hi], [name]))
            result = (name, shape)
        elif node.op in ("Add", "AddV2"):
            (a, shape_a), (b, shape_b) = self.emit(node.inputs[0]), self.emit(node.inputs[1])
            if shape_a != shape_b:
                raise GraphDefError(f"{name}: adds tensors of shapes {shape_a} and {shape_b}")
            self.nodes.append(self.helper.make_node("Add", [a, b], [name]))
            result = (name, shape_a)
        else:
            raise GraphDefError(f"{name}: op {node.op} is not supported in the convolutional part")
        self.done[name] = result
        return result

    def conv(self, node: TFNode, after: TFNode | None) -> tuple[str, tuple[int, int, int]]:
        x, (channels, height, width) = self.emit(node.inputs[0])
        kernel = self.const(node.inputs[1])  # H, W, in, out (depthwise: H, W, in, multiplier)
        kh, kw = kernel.shape[:2]
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise GraphDefError(f"{node.name}: data_format {node.attrs['data_format']} (expected NHWC)")
        strides = node.attrs.get("strides", [1, 1, 1, 1])
        dilations = node.attrs.get("dilations", [1, 1, 1, 1])
        if node.op == "Conv2D":
            weight, group = kernel.transpose(3, 2, 0, 1), 1
        else:
            weight = kernel.reshape(kh, kw, -1).transpose(2, 0, 1)[:, None]
            group = kernel.shape[2]
        if kernel.shape[2] != channels:  # input channels (depthwise: one filter group each)
            raise GraphDefError(f"{node.name}: kernel {kernel.shape} does not fit {channels} input channels")
        bias = np.zeros(weight.shape[0], np.float32)
        if after is not None and after.op == "BiasAdd":
            bias = self.const(after.inputs[1])
        elif after is not None:  # fold the batch norm: y = gamma (conv - mean) / sqrt(var + eps) + beta
            gamma, beta, mean, var = (self.const(i) for i in after.inputs[1:5])
            scale = gamma / np.sqrt(var + float(after.attrs.get("epsilon", 1e-3)))
            weight = weight * scale[:, None, None, None]
            bias = beta - mean * scale
        if node.attrs.get("padding") == "SAME":
            out_h, top, bottom = _same_pads(height, kh, strides[1], dilations[1])
            out_w, left, right = _same_pads(width, kw, strides[2], dilations[2])
        elif node.attrs.get("padding") == "VALID":
            out_h = (height - (kh - 1) * dilations[1] - 1) // strides[1] + 1
            out_w = (width - (kw - 1) * dilations[2] - 1) // strides[2] + 1
            top = bottom = left = right = 0
        else:
            raise GraphDefError(f"{node.name}: padding {node.attrs.get('padding')!r} (expected SAME or VALID)")
        name = (after or node).name
        w = self.initializer(f"{name}/W", weight)
        b = self.initializer(f"{name}/B", bias)
        self.nodes.append(self.helper.make_node(
            "Conv", [x, w, b], [name], kernel_shape=[kh, kw], strides=[strides[1], strides[2]],
            dilations=[dilations[1], dilations[2]], pads=[top, left, bottom, right], group=group))
        return name, (weight.shape[0], out_h, out_w)

    def flat_head(self, name: str, width: int) -> tuple[str, tuple[int, int]]:
        """(1, C, H, W) -> (1, H*W*A, width) in TF's row, column, anchor order."""
        x, (channels, height, w) = self.emit(name)
        if channels % width:
            raise GraphDefError(f"{name}: {channels} channels is not a multiple of {width}")
        t = self.helper.make_node("Transpose", [x], [f"{name}/nhwc"], perm=[0, 2, 3, 1])
        shape = self.initializer(f"{name}/shape", np.array([1, -1, width], np.int64))
        self.nodes += [t, self.helper.make_node("Reshape", [f"{name}/nhwc", shape], [f"{name}/flat"])]
        return f"{name}/flat", (height, w)


def ssd_onnx(graph: dict[str, TFNode], spec: Optional[SSDSpec] = None):
    """(ONNX model, feature-map sizes). The model maps ``input`` (1, 3, H, W), already scaled to
    [-1, 1], to ``boxes`` (1, anchors, 4) box encodings and ``scores`` (1, anchors, classes + 1)
    sigmoid scores (column 0 is the background)."""
    spec = spec or SSDSpec()
    conv = _Converter(graph, spec.image_size)
    heads: dict[str, list[str]] = {"BoxEncodingPredictor": [], "ClassPredictor": []}
    sizes = []
    for i in range(spec.num_layers):
        for head, width in (("BoxEncodingPredictor", 4), ("ClassPredictor", spec.num_classes + 1)):
            name = f"BoxPredictor_{i}/{head}/BiasAdd"
            if name not in graph:
                raise GraphDefError(f"no {name}: not an SSD with {spec.num_layers} feature maps "
                                    "from the TF Object Detection API")
            flat, size = conv.flat_head(name, width)
            heads[head].append(flat)
        sizes.append(size)
    h = conv.helper
    conv.nodes += [h.make_node("Concat", heads["BoxEncodingPredictor"], ["boxes"], axis=1),
                   h.make_node("Concat", heads["ClassPredictor"], ["logits"], axis=1),
                   h.make_node("Sigmoid", ["logits"], ["scores"])]
    width, height = spec.image_size
    inputs = [h.make_tensor_value_info("input", conv.onnx.TensorProto.FLOAT, [1, 3, height, width])]
    outputs = [h.make_tensor_value_info("boxes", conv.onnx.TensorProto.FLOAT, [1, "anchors", 4]),
               h.make_tensor_value_info("scores", conv.onnx.TensorProto.FLOAT, [1, "anchors", spec.num_classes + 1])]
    model = h.make_model(h.make_graph(conv.nodes, "ssd", inputs, outputs, conv.weights),
                         opset_imports=[h.make_opsetid("", 13)], producer_name="reidkit")
    conv.onnx.checker.check_model(model)
    return model, sizes


def ssd_anchors(sizes: list[tuple[int, int]], spec: Optional[SSDSpec] = None) -> np.ndarray:
    """(N, 4) anchors ``[yc, xc, h, w]`` in [0, 1], in the order of the flattened predictions."""
    spec = spec or SSDSpec()
    width, height = spec.image_size
    out = []
    for (fh, fw), (widths, heights) in zip(sizes, anchor_sizes(spec)):
        ys, xs = np.meshgrid((np.arange(fh) + 0.5) / fh, (np.arange(fw) + 0.5) / fw, indexing="ij")
        a = len(widths)
        grid = np.empty((fh, fw, a, 4), np.float32)
        grid[..., 0] = ys[..., None]
        grid[..., 1] = xs[..., None]
        grid[..., 2] = np.asarray(heights, np.float32) / height
        grid[..., 3] = np.asarray(widths, np.float32) / width
        out.append(grid.reshape(-1, 4))
    return np.concatenate(out)


def decode_boxes(codes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Box encodings ``[ty, tx, th, tw]`` -> ``[x1, y1, x2, y2]`` in [0, 1] units (unclipped)."""
    t = codes / BOX_SCALES
    yc = t[:, 0] * anchors[:, 2] + anchors[:, 0]
    xc = t[:, 1] * anchors[:, 3] + anchors[:, 1]
    h = np.exp(t[:, 2]) * anchors[:, 2]
    w = np.exp(t[:, 3]) * anchors[:, 3]
    return np.stack([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2], axis=1)

