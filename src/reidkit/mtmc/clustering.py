"""Agglomerative clustering of tracklets with cannot-links.

Average linkage on a distance matrix: the two closest clusters merge while their mean distance
is under ``threshold``, unless any pair of members is cannot-linked (two tracklets of one camera
that overlap in time are two people, however alike they look). numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def cannot_link_overlaps(cameras: Sequence[str], first: Sequence[int], last: Sequence[int]) -> np.ndarray:
    """(N, N) bool: True where tracklets i and j are in the same camera and their frame ranges
    [first, last] overlap, so they cannot be the same person."""
    cams = np.asarray(cameras)
    a, b = np.asarray(first), np.asarray(last)
    overlap = (a[:, None] <= b[None, :]) & (a[None, :] <= b[:, None])
    links = (cams[:, None] == cams[None, :]) & overlap
    np.fill_diagonal(links, False)
    return links


def constrained_agglomerative(distances: np.ndarray, cannot_link: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster labels 0..K-1 (numbered by first member) of average-linkage clustering that stops
    at ``threshold`` and never puts a cannot-linked pair in one cluster. O(N^2) memory, O(N^2)
    work per merge in the worst case; meant for up to a few thousand tracklets."""
    d = np.array(distances, np.float64)
    n = len(d)
    if d.shape != (n, n) or cannot_link.shape != (n, n):
        raise ValueError(f"distances {d.shape} and cannot_link {cannot_link.shape} must both be (N, N)")
    if not np.allclose(d, d.T, equal_nan=True):
        raise ValueError("distances must be symmetric")
    blocked = np.array(cannot_link, bool) | np.array(cannot_link, bool).T
    sizes = np.ones(n)
    alive = np.ones(n, bool)
    members = [[i] for i in range(n)]
    masked = np.where(blocked, np.inf, d)
    np.fill_diagonal(masked, np.inf)
    while True:
        flat = int(np.argmin(masked))
        i, j = divmod(flat, n)
        if not np.isfinite(masked[i, j]) or masked[i, j] >= threshold:
            break
        if i > j:
            i, j = j, i
        # Average linkage: the merged cluster's distance to k is the size-weighted mean.
        d[i] = (sizes[i] * d[i] + sizes[j] * d[j]) / (sizes[i] + sizes[j])
        d[:, i] = d[i]
        blocked[i] |= blocked[j]
        blocked[:, i] = blocked[i]
        sizes[i] += sizes[j]
        members[i] += members[j]
        members[j] = []
        alive[j] = False
        row = np.where(blocked[i] | ~alive, np.inf, d[i])
        row[i] = np.inf
        masked[i], masked[:, i] = row, row
        masked[j], masked[:, j] = np.inf, np.inf
    labels = np.empty(n, np.int64)
    for label, group in enumerate(sorted((sorted(m) for m in members if m), key=lambda m: m[0])):
        labels[group] = label
    return labels
