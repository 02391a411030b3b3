"""Constant-velocity Kalman filter over boxes as (centre x, centre y, aspect w/h, height).

The state is (cx, cy, a, h) and their velocities. Process and measurement noise scale with the
box height (a far person moves fewer pixels than a near one), as in SORT/DeepSORT. Everything
is batched over tracks: means (N, 8), covariances (N, 8, 8).
"""

from __future__ import annotations

import numpy as np

#: 0.95 quantile of the chi-square distribution with 4 degrees of freedom: Mahalanobis gate
#: for a 4-d measurement (DeepSORT's value).
GATE_4DOF = 9.4877

NDIM = 4


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w / np.maximum(h, 1e-6), h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    xyah = np.asarray(xyah, np.float64).reshape(-1, 4)
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    return np.stack([xyah[:, 0] - w / 2, xyah[:, 1] - h / 2, xyah[:, 0] + w / 2, xyah[:, 1] + h / 2], axis=1)


def _diagonals(values: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D, D) diagonal matrices."""
    out = np.zeros((*values.shape, values.shape[-1]))
    idx = np.arange(values.shape[-1])
    out[:, idx, idx] = values
    return out


class KalmanBoxFilter:
    """Predict/update for many tracks at once; ``std_position``/``std_velocity`` are per unit of height."""

    def __init__(self, std_position: float = 1 / 20, std_velocity: float = 1 / 160):
        self.std_position, self.std_velocity = std_position, std_velocity
        self.F = np.eye(2 * NDIM)
        self.F[:NDIM, NDIM:] = np.eye(NDIM)  # position += velocity (one frame)
        self.H = np.eye(NDIM, 2 * NDIM)

    def _std(self, h: np.ndarray, pos: float, vel: float, a_pos: float = 1e-2, a_vel: float = 1e-5) -> np.ndarray:
        p, v = pos * h, vel * h
        return np.stack([p, p, np.full_like(h, a_pos), p, v, v, np.full_like(h, a_vel), v], axis=1)

    def initiate(self, measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(means, covariances) of new tracks from their first (N, 4) xyah measurements."""
        z = np.asarray(measurements, np.float64).reshape(-1, NDIM)
        mean = np.concatenate([z, np.zeros_like(z)], axis=1)
        std = self._std(z[:, 3], 2 * self.std_position, 10 * self.std_velocity)
        return mean, _diagonals(std ** 2)

    def predict(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame ahead."""
        if not len(mean):
            return mean, cov
        q = self._std(mean[:, 3], self.std_position, self.std_velocity)
        mean = mean @ self.F.T
        cov = self.F @ cov @ self.F.T + _diagonals(q ** 2)
        return mean, cov

    def project(self, mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The (N, 4) expected measurement and its (N, 4, 4) covariance."""
        h = mean[:, 3]
        r = np.stack([self.std_position * h, self.std_position * h, np.full_like(h, 1e-1), self.std_position * h], 1)
        return mean[:, :NDIM], cov[:, :NDIM, :NDIM] + _diagonals(r ** 2)

    def update(self, mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Correct each track with its (N, 4) xyah measurement."""
        z_mean, s = self.project(mean, cov)
        gain = np.linalg.solve(s, (cov @ self.H.T).transpose(0, 2, 1)).transpose(0, 2, 1)  # P H^T S^-1
        innovation = np.asarray(measurement, np.float64) - z_mean
        mean = mean + np.einsum("nij,nj->ni", gain, innovation)
        cov = cov - gain @ s @ gain.transpose(0, 2, 1)
        return mean, cov

    def gating_distance(self, mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray) -> np.ndarray:
        """(tracks, measurements) squared Mahalanobis distances of measurements to predictions."""
        z_mean, s = self.project(mean, cov)
        d = np.asarray(measurements, np.float64)[None, :, :] - z_mean[:, None, :]
        chol = np.linalg.cholesky(s)
        solved = np.linalg.solve(chol[:, None], d[..., None])[..., 0]
        return (solved ** 2).sum(-1)
