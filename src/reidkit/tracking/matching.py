"""Costs between tracks and detections, and the assignment that minimises their sum."""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of L2-normalised rows."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    return 1.0 - np.asarray(a, np.float64) @ np.asarray(b, np.float64).T


def assign(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost matching (Hungarian) keeping only pairs with cost <= ``max_cost``:
    (matches as (row, col), unmatched rows, unmatched columns)."""
    from scipy.optimize import linear_sum_assignment

    n, m = cost.shape
    if not n or not m:
        return [], list(range(n)), list(range(m))
    big = max_cost + 1e5
    rows, cols = linear_sum_assignment(np.where(np.isfinite(cost) & (cost <= max_cost), cost, big))
    matches = [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= max_cost]
    matched_rows = {r for r, _ in matches}
    matched_cols = {c for _, c in matches}
    return matches, [r for r in range(n) if r not in matched_rows], [c for c in range(m) if c not in matched_cols]
