"""Camera-motion compensation: how the whole picture moved between two frames.

A panning or shaking camera moves every person in the image at once; a constant-velocity
Kalman filter then predicts boxes where nobody is, and IoU matching breaks. ``CameraMotion``
estimates the frame-to-frame motion as a similarity transform (rotation, uniform scale,
translation): corners of the previous frame (outside the detected people, who move on their
own) are followed into the current one with pyramidal Lucas-Kanade optical flow, and the
transform is fitted to them with RANSAC. :meth:`Tracker.update` moves the tracks by it before
predicting (BoT-SORT's "GMC" idea, with sparse optical flow).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraMotion:
    """``estimate(frame, boxes)`` -> 2x3 affine mapping the previous frame's pixels to this one's."""

    def __init__(self, scale: float = 0.5, max_corners: int = 400, min_points: int = 12):
        if not 0 < scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {scale}")
        self.scale, self.max_corners, self.min_points = scale, max_corners, min_points
        self._previous: Optional[np.ndarray] = None
        self._previous_mask: Optional[np.ndarray] = None

    def _gray(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
        if self.scale != 1:
            gray = cv2.resize(gray, None, fx=self.scale, fy=self.scale, interpolation=cv2.INTER_AREA)
        return gray

    def _mask(self, shape: tuple[int, ...], boxes: Optional[np.ndarray]) -> np.ndarray:
        mask = np.full(shape[:2], 255, np.uint8)
        if boxes is not None:
            for x1, y1, x2, y2 in np.round(np.asarray(boxes, np.float64).reshape(-1, 4) * self.scale).astype(int):
                mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        return mask

    def estimate(self, frame: np.ndarray, boxes: Optional[np.ndarray] = None) -> np.ndarray:
        """The motion from the previous frame given to this one (identity for the first frame,
        or when too few points can be followed). ``boxes`` (xyxy): moving people to ignore."""
        import cv2

        gray = self._gray(frame)
        previous, previous_mask = self._previous, self._previous_mask
        self._previous, self._previous_mask = gray, self._mask(gray.shape, boxes)
        if previous is None or previous.shape != gray.shape:
            return IDENTITY.copy()
        corners = cv2.goodFeaturesToTrack(previous, self.max_corners, 0.01, 5, mask=previous_mask, blockSize=3)
        if corners is None or len(corners) < self.min_points:
            return IDENTITY.copy()
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, gray, corners, None, winSize=(21, 21), maxLevel=3)
        ok = status.reshape(-1) == 1
        if ok.sum() < self.min_points:
            return IDENTITY.copy()
        warp, inliers = cv2.estimateAffinePartial2D(corners[ok], moved[ok], method=cv2.RANSAC,
                                                    ransacReprojThreshold=1.0)
        if warp is None or inliers is None or inliers.sum() < self.min_points:
            return IDENTITY.copy()
        warp = warp.astype(np.float64)
        warp[:, 2] /= self.scale  # translation back to full-resolution pixels
        return warp


def warp_states(mean: np.ndarray, cov: np.ndarray, warp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kalman states (N, 8) over (cx, cy, a, h) and velocities, with covariances (N, 8, 8), moved
    by the 2x3 similarity ``warp``: centres by the full transform, velocities by its linear
    part, heights scaled by its scale; aspect ratios unchanged."""
    linear, shift = warp[:, :2], warp[:, 2]
    scale = float(np.sqrt(abs(np.linalg.det(linear))))
    block = np.zeros((4, 4))
    block[:2, :2], block[2, 2], block[3, 3] = linear, 1.0, scale
    t = np.kron(np.eye(2), block)  # positions and velocities alike
    mean = mean @ t.T
    mean[:, :2] += shift
    cov = t @ cov @ t.T
    return mean, cov
