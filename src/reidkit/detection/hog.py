"""OpenCV's HOG + linear SVM people detector (Dalal-Triggs): no model file, low recall on small people."""

from __future__ import annotations

import numpy as np

from .base import Detections, Detector, check_frame


#: OpenCV's people window (width, height): its detectMultiScale corrupts memory on smaller images.
WINDOW = (64, 128)


class HOGDetector(Detector):
    name = "hog"

    def __init__(self, win_stride: int = 8, scale: float = 1.05, min_score: float = 0.0):
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise ImportError("this OpenCV has no HOG (dropped in 5.0): pip install 'opencv-python-headless<5'")
        self.cv2 = cv2
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.win_stride, self.scale, self.min_score = win_stride, scale, min_score

    def detect(self, frame: np.ndarray) -> Detections:
        frame = check_frame(frame)
        if frame.shape[1] < WINDOW[0] or frame.shape[0] < WINDOW[1]:
            return Detections.empty()  # nobody fits its window; and OpenCV would crash (exit 139)
        gray = self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2GRAY)
        rects, weights = self.hog.detectMultiScale(gray, winStride=(self.win_stride, self.win_stride),
                                                   padding=(8, 8), scale=self.scale)
        if not len(rects):
            return Detections.empty()
        boxes = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        # SVM margins, squashed to (0, 1) so the tracker's score thresholds apply.
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, np.float32).reshape(-1)))
        keep = scores >= self.min_score
        return Detections(boxes[keep], scores[keep], np.zeros(int(keep.sum()), np.int64))
