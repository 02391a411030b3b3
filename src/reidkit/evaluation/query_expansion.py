"""Average query expansion (AQE, alpha-weighted; Chum et al. 2007, Radenovic et al. 2018)."""

from __future__ import annotations

import numpy as np

from .distance import l2_normalize
from .neighbors import nearest_neighbors


def weighted_mean(neighbours: np.ndarray, similarities: np.ndarray, alpha: float = 3.0) -> np.ndarray:
    """AQE's combination step: (N, K, D) neighbour features averaged with weights
    ``max(similarity, 0) ** alpha`` ((N, K) similarities to each row's query) -> (N, D)."""
    # Negative similarities get no weight (a fractional power of them is undefined).
    weights = np.power(np.maximum(similarities, 0.0), alpha, dtype=np.float32)
    return (neighbours * weights[..., None]).mean(axis=1)


def average_query_expansion(q_feat: np.ndarray, g_feat: np.ndarray, qe_times: int = 1, qe_k: int = 5,
                            alpha: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Replace every feature by the mean of its ``qe_k`` nearest (itself included) over query and
    gallery, each weighted by its cosine similarity (floored at 0) to the power ``alpha``; repeated ``qe_times``.

    Returns new (unnormalised) query and gallery features, as fast-reid's TEST.AQE does.
    """
    if qe_k < 1 or qe_times < 1:
        raise ValueError(f"AQE needs qe_k >= 1 and qe_times >= 1, got qe_k={qe_k}, qe_times={qe_times}")
    feats = np.concatenate([np.asarray(q_feat, np.float32), np.asarray(g_feat, np.float32)])
    nq = len(q_feat)
    for _ in range(qe_times):
        unit = l2_normalize(feats)
        idx, sims = nearest_neighbors(unit, qe_k, similarity=True)
        new = np.empty_like(feats)
        for start in range(0, len(feats), 4096):
            stop = min(start + 4096, len(feats))
            new[start:stop] = weighted_mean(feats[idx[start:stop]], sims[start:stop], alpha)
        feats = new
    return feats[:nq], feats[nq:]
