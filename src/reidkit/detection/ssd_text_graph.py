"""The text graph that lets OpenCV DNN run a TensorFlow Object Detection API SSD.

A frozen TF SSD graph computes its anchors, box decoding and non-maximum suppression with ops
OpenCV cannot import (TensorArray loops, dynamic shapes). OpenCV can run the same model when a
text graph (``.pbtxt``, read beside the ``.pb``'s weights) keeps only the convolutional part and
ends in OpenCV's own SSD layers. This module writes that text graph without TensorFlow:

1. ``cv2.dnn.writeTextGraph`` dumps the ``.pb``'s structure as text;
2. nodes of the preprocessing, anchor generator and postprocessing scopes, and all ops outside
   the convolutional vocabulary, are dropped; ``Identity`` nodes are bypassed; references to
   weight constants stay (OpenCV looks them up in the ``.pb`` by name); the first convolution
   reads the input placeholder (the pixel scaling then happens in ``blobFromImage``);
3. per feature map, the class and box-encoding predictions are flattened and concatenated, and a
   ``PriorBox`` gives the anchors of TF's ``ssd_anchor_generator``: scales spaced linearly from
   ``min_scale`` to ``max_scale``; three boxes in the first map (0.1 square, and min_scale at
   aspect ratios 2 and 1/2), then every aspect ratio plus one box of the geometric mean of this
   and the next scale; variances 0.1, 0.1, 0.2, 0.2 (the box coder's 10, 10, 5, 5);
4. a sigmoid on the class scores and a ``DetectionOutput`` (centre-size decoding with TF's
   y-x ordering, NMS) give rows ``[image, class, score, x1, y1, x2, y2]`` in [0, 1].
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

KEEP_OPS = {"Conv2D", "BiasAdd", "Add", "AddV2", "Relu", "Relu6", "Placeholder", "FusedBatchNorm",
            "FusedBatchNormV3", "DepthwiseConv2dNative", "ConcatV2", "Mul", "MaxPool", "AvgPool"}
DROP_SCOPES = ("MultipleGridAnchorGenerator/", "Postprocessor/", "Preprocessor/")


@dataclass
class SSDSpec:
    """Hyper-parameters of the trained SSD (its pipeline.config), as the anchors must match them."""

    num_classes: int = 1
    num_layers: int = 6
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple[float, ...] = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    image_size: tuple[int, int] = (300, 300)  # width, height
    nms_threshold: float = 0.6
    score_threshold: float = 0.01
    keep_top_k: int = 100


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[str]
    body: list[str]  # the node's other lines (attributes), as written

    def text(self) -> str:
        lines = ["node {", f'  name: "{self.name}"', f'  op: "{self.op}"']
        lines += [f'  input: "{i}"' for i in self.inputs]
        return "\n".join(lines + self.body + ["}"])


def _parse_nodes(text: str) -> list[_Node]:
    nodes, current = [], None
    for line in text.splitlines():
        if current is None:
            if line == "node {":
                current = _Node("", "", [], [])
            continue
        if line == "}":
            nodes.append(current)
            current = None
        elif line.startswith('  name: "') and not current.name:
            current.name = line[9:-1]
        elif line.startswith('  op: "') and not current.op:
            current.op = line[7:-1]
        elif line.startswith('  input: "'):
            current.inputs.append(line[10:-1])
        else:
            current.body.append(line)
    if current is not None:
        raise ValueError("text graph ends inside a node (truncated?)")
    return nodes


def _tensor_attr(key: str, values: list[float] | list[int]) -> list[str]:
    is_float = any(isinstance(v, float) for v in values)
    dtype, fieldname = ("DT_FLOAT", "float_val") if is_float else ("DT_INT32", "int_val")
    vals = " ".join(f"{fieldname}: {v!r}" for v in values)
    return ["  attr {", f'    key: "{key}"',
            f"    value {{ tensor {{ dtype: {dtype} tensor_shape {{ dim {{ size: {len(values)} }} }} {vals} }} }}",
            "  }"]


def _scalar_attr(key: str, kind: str, value) -> list[str]:
    if kind == "s":
        value = f'"{value}"'
    elif kind == "b":
        value = "true" if value else "false"
    return ["  attr {", f'    key: "{key}"', f"    value {{ {kind}: {value} }}", "  }"]


def anchor_sizes(spec: SSDSpec) -> list[tuple[list[float], list[float]]]:
    """(widths, heights) in pixels of each feature map's anchors, as TF's ssd_anchor_generator
    makes them with ``reduce_boxes_in_lowest_layer`` and an interpolated scale."""
    n = spec.num_layers
    scales = [spec.min_scale + (spec.max_scale - spec.min_scale) * i / (n - 1) for i in range(n)] + [1.0]
    width, height = spec.image_size
    out = []
    for i in range(n):
        if i == 0:
            shapes = [(0.1, 1.0), (spec.min_scale, 2.0), (spec.min_scale, 0.5)]
        else:
            shapes = [(scales[i], ar) for ar in spec.aspect_ratios] + [(math.sqrt(scales[i] * scales[i + 1]), 1.0)]
        out.append(([s * math.sqrt(ar) * width for s, ar in shapes], [s / math.sqrt(ar) * height for s, ar in shapes]))
    return out


def ssd_text_graph(pb_path: str | Path, spec: Optional[SSDSpec] = None) -> str:
    """The OpenCV text graph for the frozen TF SSD at ``pb_path`` (see the module docstring)."""
    import cv2

    spec = spec or SSDSpec()
    pb_path = Path(pb_path)
    if not pb_path.is_file():
        raise FileNotFoundError(f"frozen graph not found: {pb_path}")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.pbtxt"
        try:
            cv2.dnn.writeTextGraph(str(pb_path), str(raw))
        except cv2.error as e:
            raise ValueError(f"{pb_path}: not a TensorFlow frozen graph OpenCV can read ({e.err})") from None
        nodes = _parse_nodes(raw.read_text())
    by_name = {n.name: n for n in nodes}
    placeholder = next((n for n in nodes if n.op == "Placeholder"), None)
    if placeholder is None:
        raise ValueError(f"{pb_path}: no input placeholder")
    for i in range(spec.num_layers):
        for head in ("BoxEncodingPredictor", "ClassPredictor"):
            if f"BoxPredictor_{i}/{head}/BiasAdd" not in by_name:
                raise ValueError(f"{pb_path}: no BoxPredictor_{i}/{head}/BiasAdd: not an SSD with "
                                 f"{spec.num_layers} feature maps from the TF Object Detection API")

    def resolve(name: str) -> str:  # through Identity chains to their source
        name = name.split(":")[0].lstrip("^")
        while name in by_name and by_name[name].op == "Identity" and by_name[name].inputs:
            name = by_name[name].inputs[0].split(":")[0].lstrip("^")
        return name

    kept = [n for n in nodes if n.op in KEEP_OPS and not n.name.startswith(DROP_SCOPES)]
    kept_names = {n.name for n in kept}
    out: list[_Node] = []
    for node in kept:
        inputs = []
        for raw_input in node.inputs:
            if raw_input.startswith("^"):
                continue  # control dependencies mean nothing to OpenCV
            src = resolve(raw_input)
            if src in kept_names or (src in by_name and by_name[src].op == "Const"):
                inputs.append(src)
            elif not inputs and node.op in ("Conv2D", "DepthwiseConv2dNative") and node is not placeholder:
                inputs.append(placeholder.name)  # the first layer read the dropped preprocessing
        out.append(_Node(node.name, node.op, inputs, node.body))
    fed = [n for n in out if placeholder.name in n.inputs]
    if len(fed) != 1:
        raise ValueError(f"{pb_path}: expected one layer to read the input, found {len(fed)}")

    extra = [_Node("concat/axis_flatten", "Const", [], _tensor_attr("value", [-1])),
             _Node("PriorBox/concat/axis", "Const", [], _tensor_attr("value", [-2])),
             _Node("reshape_prior_boxes_to_4d", "Const", [], _tensor_attr("value", [1, 2, -1, 1]))]
    for head in ("ClassPredictor", "BoxEncodingPredictor"):
        flat = []
        for i in range(spec.num_layers):
            source = f"BoxPredictor_{i}/{head}/BiasAdd"
            extra.append(_Node(f"{source}/Flatten", "Flatten", [source], []))
            flat.append(f"{source}/Flatten")
        extra.append(_Node(f"{head}/concat", "ConcatV2", flat + ["concat/axis_flatten"], []))
    priors = []
    for i, (widths, heights) in enumerate(anchor_sizes(spec)):
        body = (_scalar_attr("flip", "b", False) + _scalar_attr("clip", "b", False)
                + _tensor_attr("width", widths) + _tensor_attr("height", heights)
                + _tensor_attr("variance", [0.1, 0.1, 0.2, 0.2]))
        extra.append(_Node(f"PriorBox_{i}", "PriorBox", [f"BoxPredictor_{i}/BoxEncodingPredictor/BiasAdd",
                                                          placeholder.name], body))
        extra.append(_Node(f"PriorBox_{i}/4d", "Reshape", [f"PriorBox_{i}", "reshape_prior_boxes_to_4d"], []))
        priors.append(f"PriorBox_{i}/4d")
    extra.append(_Node("PriorBox/concat", "ConcatV2", priors + ["PriorBox/concat/axis"], []))
    extra.append(_Node("ClassPredictor/concat/sigmoid", "Sigmoid", ["ClassPredictor/concat"], []))
    detection = (_scalar_attr("num_classes", "i", spec.num_classes + 1) + _scalar_attr("share_location", "b", True)
                 + _scalar_attr("background_label_id", "i", 0) + _scalar_attr("nms_threshold", "f", spec.nms_threshold)
                 + _scalar_attr("top_k", "i", spec.keep_top_k) + _scalar_attr("code_type", "s", "CENTER_SIZE")
                 + _scalar_attr("keep_top_k", "i", spec.keep_top_k)
                 + _scalar_attr("confidence_threshold", "f", spec.score_threshold)
                 + _scalar_attr("loc_pred_transposed", "b", True))
    extra.append(_Node("detection_out", "DetectionOutput",
                       ["BoxEncodingPredictor/concat", "ClassPredictor/concat/sigmoid", "PriorBox/concat"], detection))

    # Keep only what feeds detection_out.
    graph = {n.name: n for n in out + extra}
    needed, stack = set(), ["detection_out"]
    while stack:
        name = stack.pop()
        if name in needed or name not in graph:
            continue
        needed.add(name)
        stack.extend(graph[name].inputs)
    text = "\n".join(n.text() for n in out + extra if n.name in needed) + "\n"
    if re.search(r'name: "(Preprocessor|Postprocessor|MultipleGridAnchorGenerator)/', text):
        raise AssertionError("a dropped scope survived")  # a bug here, not the user's
    return text
