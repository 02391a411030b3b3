"""Cross-camera association: tracklets -> global identities.

1. Distances: cosine distance between tracklet features, optionally k-reciprocal re-ranked
   (:func:`reidkit.evaluation.rerank.k_reciprocal_rerank` over all tracklets).
2. Constraints (cannot-links): two tracklets of one camera that overlap in time are two people;
   with a :class:`~.topology.Topology`, two tracklets of cameras that no walk of allowed
   transitions joins in the time between them are two people (:mod:`.pairs`).
3. Clustering: average-linkage agglomerative clustering that never merges across a cannot-link
   and stops at ``threshold`` (:func:`~.clustering.constrained_agglomerative`), by default
   calibrated on the data: the distance under which a tracklet would meet a few other people on
   average, judged by the pairs known to be two people (:func:`calibrated_threshold`). The closed-world
   option (everyone appears in every camera) matches the two cameras one-to-one by the Hungarian
   method instead; with more cameras, it clusters with one tracklet per camera at most.

Above :data:`DENSE_LIMIT` tracklets the clustering runs per component of the close pairs
(:mod:`.blocking`). numpy and scipy (Hungarian method, components) only.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .clustering import constrained_agglomerative
from .pairs import cannot_links, distances
from .topology import Topology, Transition
from .tracklets import TrackletRecord

__all__ = ["FALLBACK_THRESHOLD", "IMPOSTORS", "Topology", "Transition", "associate", "calibrated_threshold",
           "cannot_links", "distances", "sampled_threshold"]

#: With ``threshold`` None, the cannot-linked pairs (two people for sure) calibrate the threshold
#: to the model and the cameras: it is the distance under which a tracklet would find this many
#: other people on average, judging by how often known-different pairs come that close, among
#: the tracklets it may be linked to. Counting per tracklet keeps it strict on large sets: on
#: the CUHK03 test split (100 candidates each) it is the 5% quantile of the negatives (F1 0.860),
#: on 10,000 synthetic tracklets (9,960 each) the 0.05% quantile (F1 0.990), where a fixed 2%
#: quantile gave F1 0.818 and 0.67 (precision 0.50).
IMPOSTORS = 5.0
#: ... but never above this quantile of the negatives.
MAX_QUANTILE = 0.05
#: Below this many cannot-linked pairs the calibration falls back to a fixed cosine distance: a
#: low quantile of a few dozen pairs is just their smallest one (vtest.avi's two halves: 0.16, too strict).
MIN_NEGATIVES = 200
FALLBACK_THRESHOLD = 0.3


def calibrated_threshold(dist: np.ndarray, blocked: np.ndarray, impostors: float = IMPOSTORS,
                         fallback: float = FALLBACK_THRESHOLD) -> float:
    """The distance under which each tracklet would have ``impostors`` other people on average
    (see :data:`IMPOSTORS`): the ``min(impostors / m, MAX_QUANTILE)`` quantile of the distances of
    cannot-linked pairs, ``m`` the mean number of tracklets a tracklet may be linked to; or
    ``fallback`` (:data:`FALLBACK_THRESHOLD` times the model's ``distance_scale``) when there are
    too few such pairs to tell."""
    n = len(dist)
    iu = np.triu_indices(n, 1)
    negatives = dist[iu][blocked[iu]]
    if len(negatives) < MIN_NEGATIVES:
        return fallback
    candidates = (n - 1) - 2 * len(negatives) / n  # per tracklet, on average
    return float(np.quantile(negatives, min(impostors / max(candidates, 1.0), MAX_QUANTILE)))


#: Above this many tracklets, open-world association runs per component of the close pairs
#: (:mod:`.blocking`) instead of on one N x N matrix (8 bytes a pair: 20,000 tracklets, 3.2 GB).
DENSE_LIMIT = 20_000
#: Tracklets drawn (seeded) to calibrate the threshold of a set too large for one matrix.
CALIBRATION_SAMPLE = 4000


def sampled_threshold(records: Sequence[TrackletRecord], sample: int = CALIBRATION_SAMPLE, seed: int = 0,
                      impostors: float = IMPOSTORS, fallback: float = FALLBACK_THRESHOLD) -> float:
    """:func:`calibrated_threshold` from a seeded sample of the tracklets, its impostor count
    scaled to the whole set (a tracklet of the whole set has N / sample times the candidates)."""
    rows = np.sort(np.random.default_rng(seed).choice(len(records), min(sample, len(records)), replace=False))
    part = [records[i] for i in rows]
    return calibrated_threshold(distances(part), cannot_links(part), impostors * len(part) / len(records), fallback)


def associate(records: Sequence[TrackletRecord], threshold: Optional[float] = None,
              topology: Optional[Topology] = None, rerank: bool = False, closed_world: bool = False,
              blocks: Optional[bool] = None, fallback: float = FALLBACK_THRESHOLD) -> np.ndarray:
    """Global identity labels 0..K-1, one per record (numbered by first member). ``threshold``
    None: :func:`calibrated_threshold` (the same-camera overlaps' distances, before a topology's
    links; ``fallback`` when they are too few). ``blocks`` (default: above :data:`DENSE_LIMIT` tracklets) clusters per component of
    the close pairs: for a given threshold the same result without an N x N matrix (the
    calibration then uses a sample, :func:`sampled_threshold`, lowered as far as it takes to
    keep blocks small, :func:`~.blocking.fitting_threshold`; not with ``rerank``, which needs the matrix)."""
    n = len(records)
    if n == 0:
        return np.zeros(0, np.int64)
    if blocks is None:
        blocks = n > DENSE_LIMIT and not rerank and not closed_world
    if blocks:
        if rerank or closed_world:
            raise ValueError("association in blocks works without --rerank and --closed-world")
        from .blocking import FIT_BLOCK, associate_in_blocks

        if threshold is None:
            return associate_in_blocks(records, sampled_threshold(records, fallback=fallback), topology, fit=FIT_BLOCK)
        return associate_in_blocks(records, threshold, topology)
    dist = distances(records, rerank)
    if not closed_world and threshold is None:
        threshold = calibrated_threshold(dist, cannot_links(records), fallback=fallback)
    blocked = cannot_links(records, topology)
    if not closed_world:
        return constrained_agglomerative(dist, blocked, threshold)
    cams = np.array([r.camera for r in records])
    names = sorted(set(cams.tolist()))
    blocked = blocked | (cams[:, None] == cams[None, :])  # one tracklet per camera in an identity
    np.fill_diagonal(blocked, False)
    if len(names) != 2:
        return constrained_agglomerative(dist, blocked, np.inf)
    from scipy.optimize import linear_sum_assignment

    a, b = np.flatnonzero(cams == names[0]), np.flatnonzero(cams == names[1])
    cost = np.where(blocked[np.ix_(a, b)], 1e6, dist[np.ix_(a, b)])
    labels = np.arange(n)
    for i, j in zip(*linear_sum_assignment(cost)):
        if cost[i, j] < 1e6:
            labels[b[j]] = a[i]
    _, relabelled = np.unique(labels, return_inverse=True)
    order = {old: new for new, old in enumerate(dict.fromkeys(relabelled.tolist()))}
    return np.array([order[x] for x in relabelled.tolist()], np.int64)
