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
    at ``threshold`` and never puts a cannot-linked pair in one cluster.

    One (N, N) float64 matrix holds the cluster distances with cannot-linked and finished pairs at
    infinity (a mean with infinity stays infinite, so a merged cluster inherits its members'
    cannot-links); each row's minimum is cached, so a merge costs O(N) plus the rows whose
    nearest cluster took part in it: 10,000 tracklets in seconds, 0.8 GB."""
    d = np.array(distances, np.float64)
    n = len(d)
    if d.shape != (n, n) or cannot_link.shape != (n, n):
        raise ValueError(f"distances {d.shape} and cannot_link {cannot_link.shape} must both be (N, N)")
    if not np.allclose(d, d.T, equal_nan=True):
        raise ValueError("distances must be symmetric")
    blocked = np.asarray(cannot_link, bool)
    d[blocked | blocked.T] = np.inf
    np.fill_diagonal(d, np.inf)
    sizes = np.ones(n)
    members = [[i] for i in range(n)]
    if n == 0:
        return np.zeros(0, np.int64)
    row_min, row_arg = d.min(1), d.argmin(1)
    while True:
        i = int(np.argmin(row_min))  # the first row holding the smallest distance, as a flat argmin would
        if not np.isfinite(row_min[i]) or row_min[i] >= threshold:
            break
        j = int(row_arg[i])
        if i > j:
            i, j = j, i
        # Average linkage: the merged cluster's distance to k is the size-weighted mean.
        merged = (sizes[i] * d[i] + sizes[j] * d[j]) / (sizes[i] + sizes[j])
        d[i], d[:, i] = merged, merged
        d[j], d[:, j] = np.inf, np.inf
        d[i, i] = np.inf
        sizes[i] += sizes[j]
        members[i] += members[j]
        members[j] = []
        row_min[j] = np.inf
        stale = (row_arg == i) | (row_arg == j)
        column = d[:, i]
        nearer = ~stale & ((column < row_min) | ((column == row_min) & (i < row_arg)))
        row_min[nearer], row_arg[nearer] = column[nearer], i
        stale[j] = False
        stale[i] = True
        for k in np.flatnonzero(stale):
            row_min[k], row_arg[k] = d[k].min(), d[k].argmin()
    labels = np.empty(n, np.int64)
    for label, group in enumerate(sorted((sorted(m) for m in members if m), key=lambda m: m[0])):
        labels[group] = label
    return labels
