"""YOLO-family detectors the user brings as ONNX files, run by onnxruntime (person class only).

Two output layouts, told apart by shape:

- ``(1, 4 + C, N)``: Ultralytics YOLOv8/YOLO11 (and YOLOv5u) exports: box centre, size, then C
  class scores;
- ``(1, N, 5 + C)``: YOLOv5 and YOLOX exports: box centre, size, objectness, then C class
  scores (a box's score is objectness x class score).

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


class YoloOnnxDetector(Detector):
    """A YOLO-family ONNX model; keeps boxes whose best class is ``person_class`` (0 in COCO) with
    score >= threshold."""

    name = "yolo-onnx"

    def __init__(self, path: str | Path, score_threshold: float = 0.3, nms_threshold: float = 0.5,
                 person_class: int = 0, style: str = "ultralytics", input_size: Optional[tuple[int, int]] = None,
                 threads: Optional[int] = None, spinning: bool = False):
        from ..onnx_session import ort_session

        if style not in STYLES:
            raise ValueError(f"unknown YOLO style {style!r} (expected one of {', '.join(STYLES)})")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"YOLO ONNX model not found: {self.path} (reidkit never downloads weights: "
                                    "export one, e.g. `yolo export model=yolov8n.pt format=onnx`)")
        self.session = ort_session(self.path, threads=threads, spinning=spinning)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f"{self.path}: expected an image input (1, 3, H, W), got {shape}")
        fixed = all(isinstance(d, int) for d in shape[2:])
        self.input_size = tuple(int(d) for d in shape[2:]) if fixed else (input_size or (640, 640))
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.person_class = int(person_class)
        self.style = style

    def _input(self, frame: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
        image, scale, pad = letterbox(frame, self.input_size, centred=self.style == "ultralytics")
        if self.style == "yolox":
            x = image[:, :, ::-1].astype(np.float32)  # BGR, 0-255
        else:
            x = image.astype(np.float32) / 255.0
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), scale, pad

    def detect(self, frame: np.ndarray) -> Detections:
        x, scale, (left, top) = self._input(check_frame(frame))
        boxes, scores = parse_yolo_output(self.session.run(None, {self.input_name: x})[0])
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
