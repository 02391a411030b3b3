"""Read a frozen TensorFlow ``GraphDef`` (``.pb``) without TensorFlow.

Only what a frozen inference graph needs: nodes (name, op, inputs) and their attributes, with
``Const`` tensors decoded to numpy arrays. The protobuf wire format is read directly (varints and
length-delimited fields), following the field numbers of TensorFlow's ``graph.proto``,
``node_def.proto``, ``attr_value.proto``, ``tensor.proto`` and ``tensor_shape.proto``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

# TensorFlow DataType enum -> numpy dtype (the types a frozen vision graph holds).
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8, 9: np.int64,
          10: np.bool_, 19: np.float16}


class GraphDefError(ValueError):
    """The file is not a GraphDef this reader understands."""


@dataclass
class TFNode:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise GraphDefError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise GraphDefError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one message; length-delimited values as memoryviews."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise GraphDefError("truncated field")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise GraphDefError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(value: Any, wire: int) -> list[int]:
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(_signed(v))
    return out


def _packed_floats(value: Any, wire: int) -> list[float]:
    return list(struct.unpack(f"<{len(value) // 4}f", bytes(value)))


def _shape(buf: memoryview) -> list[int]:
    dims = []
    for number, _, value in _fields(buf):
        if number == 2:
            dims.append(next((_signed(v) for n, _, v in _fields(value) if n == 1), 0))
    return dims


def _tensor(buf: memoryview) -> np.ndarray | None:
    """The tensor's values; None for types a vision graph's weights never have (strings...)."""
    dtype, shape, content, values = 1, [], None, []
    for number, wire, value in _fields(buf):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _shape(value)
        elif number == 4:
            content = bytes(value)
        elif number == 5:
            values += _packed_floats(value, wire)
        elif number in (7, 10):  # int_val, int64_val
            values += _packed_varints(value, wire)
    if dtype not in DTYPES:
        return None
    np_dtype = DTYPES[dtype]
    size = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, np_dtype)
    else:
        array = np.asarray(values, np_dtype)
        if array.size == 1 and size > 1:  # TF stores a constant fill as one value
            array = np.full(size, array[0], np_dtype)
    if array.size != size:
        raise GraphDefError(f"tensor of shape {shape} holds {array.size} values")
    return array.reshape(shape)


def _attr(buf: memoryview) -> Any:
    for number, wire, value in _fields(buf):
        if number == 1:  # list
            items: list[Any] = []
            for n, w, v in _fields(value):
                if n == 2:
                    items.append(bytes(v).decode("utf-8", "replace"))
                elif n == 3:
                    items += _packed_varints(v, w)
                elif n == 4:
                    items += _packed_floats(v, w)
            return items
        if number == 2:
            return bytes(value).decode("utf-8", "replace")
        if number == 3:
            return _signed(value)
        if number == 4:
            return struct.unpack("<f", bytes(value))[0]
        if number == 5:
            return bool(value)
        if number == 6:
            return int(value)
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
    return None


def _node(buf: memoryview) -> TFNode:
    node = TFNode("", "")
    for number, _, value in _fields(buf):
        if number == 1:
            node.name = bytes(value).decode()
        elif number == 2:
            node.op = bytes(value).decode()
        elif number == 3:
            node.inputs.append(bytes(value).decode())
        elif number == 5:
            key, attr = "", None
            for n, _, v in _fields(value):
                if n == 1:
                    key = bytes(v).decode()
                elif n == 2:
                    attr = _attr(v)
            node.attrs[key] = attr
    return node


def read_graph_def(path: str | Path) -> dict[str, TFNode]:
    """The nodes of a frozen TensorFlow graph by name, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frozen graph not found: {path}")
    buf = memoryview(path.read_bytes())
    try:
        nodes = [_node(value) for number, _, value in _fields(buf) if number == 1]
    except (GraphDefError, UnicodeDecodeError, struct.error) as e:
        raise GraphDefError(f"{path}: not a TensorFlow GraphDef ({e})") from None
    if not nodes or any(not n.name or not n.op for n in nodes):
        raise GraphDefError(f"{path}: not a TensorFlow GraphDef (no named nodes)")
    return {n.name: n for n in nodes}
