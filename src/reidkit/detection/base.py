"""``Detector``: a frame in, pedestrian boxes out, whatever runs underneath."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Detections:
    """Boxes of one frame: ``xyxy`` float32 (N, 4) in pixels, ``score`` (N,), ``cls`` int (N,)
    (class 0, person, when not given)."""

    xyxy: np.ndarray
    score: np.ndarray
    cls: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, np.float32).reshape(-1, 4)
        self.score = np.asarray(self.score, np.float32).reshape(-1)
        self.cls = np.asarray(np.zeros(len(self.xyxy)) if self.cls is None else self.cls, np.int64).reshape(-1)
        if not len(self.xyxy) == len(self.score) == len(self.cls):
            raise ValueError(f"{len(self.xyxy)} boxes, {len(self.score)} scores, {len(self.cls)} classes")

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, keep) -> "Detections":
        return Detections(self.xyxy[keep], self.score[keep], self.cls[keep])


class Detector(ABC):
    """Finds people in a frame. ``detect`` takes an RGB uint8 (H, W, 3) frame."""

    #: A short name for logs and output files.
    name: str = "detector"

    @abstractmethod
    def detect(self, frame: np.ndarray) -> Detections:
        """Person boxes in pixel coordinates of ``frame``."""


def check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        got = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"expected an RGB uint8 frame of shape (H, W, 3), got {got}")
    return frame


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first (at most ``limit``)."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        ix1 = np.maximum(boxes[best, 0], boxes[rest, 0])
        iy1 = np.maximum(boxes[best, 1], boxes[rest, 1])
        ix2 = np.minimum(boxes[best, 2], boxes[rest, 2])
        iy2 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.maximum(ix2 - ix1, 0) * np.maximum(iy2 - iy1, 0)
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)
