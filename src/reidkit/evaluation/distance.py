"""Pairwise distances between feature sets (numpy only, float32, computed in row blocks)."""

from __future__ import annotations

import numpy as np

METRICS = ("cosine", "euclidean")


def l2_normalize(x: np.ndarray, eps: float = 1e-12, dtype=np.float32) -> np.ndarray:
    """``x`` (a vector or rows of vectors) scaled to unit L2 norm along its last axis, zero
    vectors staying zero; as ``dtype`` (None: keep the input's float type). The package's one
    normaliser."""
    x = np.asarray(x, dtype=dtype if dtype is not None else np.result_type(x, np.float32))
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}: expected one of {', '.join(METRICS)}")
    return metric


def pairwise_distance(a: np.ndarray, b: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Distance matrix (len(a), len(b)) in float32.

    ``cosine`` is ``1 - cos(a_i, b_j)`` (features are L2-normalised first); ``euclidean`` is the
    *squared* Euclidean distance, as fast-reid's and torchreid's ``euclidean`` metric is.
    """
    check_metric(metric)
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be 2-D with the same dimension, got {a.shape} and {b.shape}")
    if metric == "cosine":
        dist = l2_normalize(a) @ l2_normalize(b).T
        np.subtract(1.0, dist, out=dist)
        return dist
    dist = a @ b.T
    dist *= -2.0
    dist += np.einsum("ij,ij->i", a, a)[:, None]
    dist += np.einsum("ij,ij->i", b, b)[None, :]
    return dist
