"""What association knows about pairs of tracklets: their distances and the cannot-links
(one camera at overlapping times; cameras a :class:`~.topology.Topology` does not join in time).

numpy only.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .topology import Topology
from .tracklets import TrackletRecord


def cannot_links(records: Sequence[TrackletRecord], topology: Optional[Topology] = None) -> np.ndarray:
    """(N, N) bool: pairs that cannot be one person (same camera overlapping in time; or, with a
    topology, different cameras it does not connect within the travel times)."""
    n = len(records)
    cams = np.array([r.camera for r in records])
    start = np.array([r.start for r in records])
    end = np.array([r.end for r in records])
    same_camera = cams[:, None] == cams[None, :]
    links = same_camera & (start[:, None] <= end[None, :]) & (start[None, :] <= end[:, None])
    if topology is not None:
        links |= ~same_camera & ~topology.allowed_pairs(cams, start, end)
    np.fill_diagonal(links, False)
    return links


def distances(records: Sequence[TrackletRecord], rerank: bool = False) -> np.ndarray:
    """(N, N) cosine distances of the tracklet features (k-reciprocal re-ranked when asked)."""
    feats = np.stack([r.feature for r in records]).astype(np.float32)
    if rerank and len(records) > 2:
        from ..evaluation.rerank import k_reciprocal_rerank

        k1 = min(20, len(records) - 1)
        dist = k_reciprocal_rerank(feats, feats, k1=k1, k2=min(6, k1))
        return ((dist + dist.T) / 2).astype(np.float64)
    return np.clip(1.0 - feats @ feats.T, 0.0, 2.0).astype(np.float64)
