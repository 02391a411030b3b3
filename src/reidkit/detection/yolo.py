"""YOLO-family detectors the user brings as ONNX files, run by onnxruntime (person class only).

Output layouts, told apart by shape and values:

- ``(1, 4 + C, N)``: Ultralytics YOLOv8/YOLO11 (and YOLOv5u) exports: box centre, size, then C
  class scores;
- ``(1, N, 5 + C)``: YOLOv5 and decoded YOLOX exports: box centre, size, objectness, then C class
  scores (a box's score is objectness x class score);
- ``(1, N, 5 + C)`` raw YOLOX grid outputs (official exports without ``decode_in_inference``,
  e.g. the bundled YOLOX-Nano): one row per cell of the stride 8, 16 and 32 grids, row-major in
  that order; centre = (offset + cell) x stride, size = exp(log size) x stride. Told from decoded
  rows by N (the cell count of the input size) and by the centres, which decoded rows give in
  pixels and raw rows as offsets of a cell or two.

Preprocessing follows the exporter: Ultralytics/YOLOv5 letterbox the RGB frame to the input size
(centred, grey 114 padding) and scale to [0, 1]; YOLOX (``style="yolox"``) pads at the bottom and
right and feeds BGR 0-255. Boxes are mapped back to frame pixels, then class-wise NMS.
``.pt`` files need the optional ``ultralytics`` package (AGPL, never required):
:class:`UltralyticsDetector`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .base import Detections, Detector, check_frame, nms

STYLES = ("ultralytics", "yolox")
PAD_VALUE = 114
YOLOX_STRIDES = (8, 16, 32)
#: Raw centre offsets stay within a few cells; decoded centres are pixels across the input.
RAW_OFFSET_LIMIT = 8.0


def yolox_grid(input_hw: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(cell corner x, y (N, 2), stride (N, 1)) of YOLOX's grids for ``input_hw``, in its row order."""
    cells, scale = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(input_hw[0] // s), np.arange(input_hw[1] // s), indexing="ij")
        cells.append(np.stack([gx.ravel(), gy.ravel()], axis=1))
        scale.append(np.full((gx.size, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(scale).astype(np.float32)


def is_raw_yolox(rows: np.ndarray, input_hw: tuple[int, int]) -> bool:
    """Whether ``(N, 5 + C)`` rows are YOLOX's undecoded grid outputs for an input of ``input_hw``."""
    cells = sum((input_hw[0] // s) * (input_hw[1] // s) for s in YOLOX_STRIDES)
    return len(rows) == cells and float(np.median(np.abs(rows[:, :2]))) < RAW_OFFSET_LIMIT


def decode_yolox(rows: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """Raw YOLOX rows with their centres and sizes turned into input pixels (scores untouched)."""
    cell, stride = yolox_grid(input_hw)
    out = np.array(rows, np.float32, copy=True)
    out[:, :2] = (out[:, :2] + cell) * stride
    out[:, 2:4] = np.exp(np.clip(out[:, 2:4], -20, 20)) * stride
    return out


def check_input_size(size_wh: tuple[int, int], option: str = "--det-size") -> tuple[int, int]:
    """A detector input size (width, height): positive multiples of 32, as YOLO's strides need."""
    w, h = (int(v) for v in size_wh)
    if w < 32 or h < 32 or w % 32 or h % 32:
        raise ValueError(f"{option} {w}x{h}: width and height must be multiples of 32 (e.g. 416x416, 512x384)")
    return w, h


def parse_size(text: str, option: str = "--det-size") -> tuple[int, int]:
    """``"512x384"`` -> (512, 384), width first; a clear error otherwise."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected WIDTHxHEIGHT, e.g. 512x384") from None
    return check_input_size((w, h), option)


def with_dynamic_input(model: Path) -> bytes:
    """The ONNX model at ``model`` with the height and width of its image input (and its outputs'
    sizes) made symbolic, so it runs at other input sizes; for graphs that reshape with -1 and
    resize by scales, as YOLO exports do. The file itself is not changed."""
    import onnx

    proto = onnx.load(str(model))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ValueError(f"{model}: expected an image input (1, 3, H, W), got {len(dims)} dimensions")
    for d, name in ((dims[2], "height"), (dims[3], "width")):
        d.ClearField("dim_value")
        d.dim_param = name
    del proto.graph.value_info[:]  # shapes inferred for the export's size; onnxruntime infers them anew
    for k, output in enumerate(proto.graph.output):
        for i, d in enumerate(output.type.tensor_type.shape.dim[1:], start=1):
            d.ClearField("dim_value")
            d.dim_param = f"output{k}_dim{i}"
    return proto.SerializeToString()


def letterbox(frame: np.ndarray, size: tuple[int, int], centred: bool) -> tuple[np.ndarray, float, tuple[int, int]]:
    """``frame`` scaled to fit ``size`` (height, width) without distortion and padded with grey;
    returns (image, scale, (left, top) padding)."""
    import cv2

    h, w = frame.shape[:2]
    scale = min(size[0] / h, size[1] / w)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w, h) else frame
    left = (size[1] - new_w) // 2 if centred else 0
    top = (size[0] - new_h) // 2 if centred else 0
    out = np.full((size[0], size[1], 3), PAD_VALUE, np.uint8)
    out[top:top + new_h, left:left + new_w] = resized
    return out, scale, (left, top)


def parse_yolo_output(output: np.ndarray, num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes ``[cx, cy, w, h]`` (N, 4), class scores (N, C)) from either layout (see the module)."""
    out = np.asarray(output, np.float32)
    if out.ndim == 3:
        if out.shape[0] != 1:
            raise ValueError(f"expected a batch of one, got output shape {out.shape}")
        out = out[0]
    if out.ndim != 2 or min(out.shape) < 5:
        raise ValueError(f"unrecognised YOLO output shape {np.shape(output)}: expected (1, 4+C, N) or (1, N, 5+C)")
    rows, cols = out.shape
    if rows < cols:  # (4 + C, N): Ultralytics
        return out[:4].T, out[4:].T
    return out[:, :4], out[:, 4:5] * out[:, 5:]  # (N, 5 + C): objectness x class


BUNDLED_YOLOX = Path(__file__).resolve().parent / "models" / "yolox_nano.onnx"


def bundled_yolox() -> Path:
    """The YOLOX-Nano ONNX file shipped in the package (Megvii's weights, Apache-2.0; see the
    NOTICE beside it)."""
    if not BUNDLED_YOLOX.is_file():
        raise FileNotFoundError(f"the bundled detector {BUNDLED_YOLOX} is missing from this install: reinstall "
                                "reidkit, or give --detector yolox:YOUR_MODEL.onnx")
    return BUNDLED_YOLOX


class YoloOnnxDetector(Detector):
    """A YOLO-family ONNX model; keeps boxes whose best class is ``person_class`` (0 in COCO) with
    score >= threshold."""

    name = "yolo-onnx"

    def __init__(self, path: str | Path, score_threshold: float = 0.3, nms_threshold: float = 0.5,
                 person_class: int = 0, style: str = "ultralytics", input_size: Optional[tuple[int, int]] = None,
                 threads: Optional[int] = None, spinning: bool = False):
        """``input_size`` (height, width), multiples of 32: the model's own when None; a model with a
        fixed input is made dynamic in memory for another size."""
        from ..onnx_session import ort_session

        if style not in STYLES:
            raise ValueError(f"unknown YOLO style {style!r} (expected one of {', '.join(STYLES)})")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"YOLO ONNX model not found: {self.path} (reidkit never downloads weights: "
                                    "export one, e.g. `yolo export model=yolov8n.pt format=onnx`)")
        if input_size is not None:
            check_input_size((input_size[1], input_size[0]))
        self.session = ort_session(self.path, threads=threads, spinning=spinning)
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{self.path}: expected an image input (1, 3, H, W), got {shape}")
        fixed = all(isinstance(d, int) for d in shape[2:])
        own = tuple(int(d) for d in shape[2:]) if fixed else None
        self.input_size = tuple(input_size or own or (640, 640))
        self.input_name = inp.name
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.person_class = int(person_class)
        self.style = style
        self.fits_frame = False  # inputs trimmed to the frame's shape (padding to a multiple of 32 only)
        if fixed:  # made dynamic in memory: for another size, and to trim the padding when it runs so
            dynamic = ort_session(with_dynamic_input(self.path), threads=threads, spinning=spinning,
                                  name=str(self.path))
            self.fits_frame = self._runs_trimmed(dynamic)
            if self.input_size != own or self.fits_frame:
                self.session = dynamic
        else:
            self.fits_frame = self._runs_trimmed(self.session)
        try:  # one blank frame now, so that an output of no known layout is reported at once
            self.detect(np.zeros((*self.input_size, 3), np.uint8))
        except ValueError as e:
            raise ValueError(f"{self.path}: {e}") from None
        except Exception as e:  # onnxruntime's own errors for inputs the graph cannot take
            raise ValueError(f"{self.path}: cannot run at input {self.input_size[1]}x{self.input_size[0]} "
                             f"({str(e).splitlines()[0][:200]})") from None

    def _runs_trimmed(self, session) -> bool:
        """Whether ``session`` runs at an input shorter than the full size (graphs with grids or
        anchors baked in for one size do not): then frames are padded only to a multiple of 32."""
        h, w = self.input_size
        trimmed = (max(32, (h // 2) // 32 * 32), w)
        if trimmed == (h, w):
            return False
        try:
            session.run(None, {self.input_name: np.zeros((1, 3, *trimmed), np.float32)})
        except Exception:  # onnxruntime's own errors for shapes the graph cannot take
            return False
        return True

    def network_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """The (height, width) a frame of ``frame_hw`` is fed at: the input size, or, for models that
        take any size, the frame scaled to fit it and padded up to a multiple of 32 only (a 4:3
        frame at 416x416 runs at 416x320: the same boxes for three quarters of the work)."""
        if not self.fits_frame:
            return self.input_size
        scale = min(self.input_size[0] / frame_hw[0], self.input_size[1] / frame_hw[1])
        return tuple(min(size, -(-int(round(side * scale)) // 32) * 32)
                     for side, size in zip(frame_hw, self.input_size))

    def _input(self, frame: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        image, scale, pad = letterbox(frame, self.network_size(frame.shape[:2]), centred=self.style == "ultralytics")
        if self.style == "yolox":
            x = image[:, :, ::-1].astype(np.float32)  # BGR, 0-255
        else:
            x = image.astype(np.float32) / 255.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), scale, pad

    def detect(self, frame: np.ndarray) -> Detections:
        x, scale, (left, top) = self._input(check_frame(frame))
        output = self.session.run(None, {self.input_name: x})[0]
        rows = output[0] if output.ndim == 3 and output.shape[0] == 1 else output
        fed = x.shape[2:]
        if self.style == "yolox" and rows.ndim == 2 and rows.shape[1] > 5 and is_raw_yolox(rows, fed):
            output = decode_yolox(rows, fed)
        boxes, scores = parse_yolo_output(output)
        if self.person_class >= scores.shape[1]:
            raise ValueError(f"{self.path}: {scores.shape[1]} classes, no class {self.person_class}")
        score = scores[:, self.person_class]
        # One class per box, as Ultralytics and YOLOX decide it: a box is a person's only when
        # person is its best class.
        keep = (score >= self.score_threshold) & (scores.argmax(1) == self.person_class)
        boxes, score = boxes[keep], score[keep]
        xyxy = np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], axis=1)
        xyxy = (xyxy - np.array([left, top, left, top], np.float32)) / scale
        h, w = frame.shape[:2]
        xyxy = np.clip(xyxy, 0, [w, h, w, h]).astype(np.float32)
        order = nms(xyxy, score, self.nms_threshold, 300)
        xyxy, score = xyxy[order], score[order]
        valid = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(xyxy[valid], score[valid], np.zeros(int(valid.sum()), np.int64))


class UltralyticsDetector(Detector):
    """A YOLO ``.pt`` file run by the optional ``ultralytics`` package (AGPL: install it yourself)."""

    name = "ultralytics"

    def __init__(self, path: str | Path, score_threshold: float = 0.3, person_class: int = 0):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"YOLO weights not found: {self.path} (reidkit never downloads weights)")
        try:
            from ultralytics import YOLO
        except ImportError:
            raise ValueError(f"{self.path}: .pt YOLO files need the optional `ultralytics` package (AGPL-3.0, "
                             "`pip install ultralytics`), or export the model to ONNX and use onnx:FILE.onnx") from None
        self.model = YOLO(str(self.path))
        self.score_threshold = float(score_threshold)
        self.person_class = int(person_class)

    def detect(self, frame: np.ndarray) -> Detections:
        result = self.model.predict(check_frame(frame)[:, :, ::-1], conf=self.score_threshold,
                                    classes=[self.person_class], verbose=False)[0]
        boxes = result.boxes
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(), np.zeros(len(boxes), np.int64))
