"""Constrained agglomerative clustering of tracklets against a plain re-computation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from reidkit.mtmc import cannot_link_overlaps, constrained_agglomerative


def reference(d: np.ndarray, cannot: np.ndarray, threshold: float) -> np.ndarray:
    """Obviously-correct average linkage: recompute every cluster pair's mean distance each step."""
    clusters = [[i] for i in range(len(d))]
    while True:
        best = None
        for a, b in itertools.combinations(range(len(clusters)), 2):
            if any(cannot[i, j] for i in clusters[a] for j in clusters[b]):
                continue
            mean = np.mean([d[i, j] for i in clusters[a] for j in clusters[b]])
            if mean < threshold and (best is None or mean < best[0]):
                best = (mean, a, b)
        if best is None:
            break
        _, a, b = best
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    labels = np.empty(len(d), np.int64)
    for label, group in enumerate(sorted((sorted(c) for c in clusters), key=lambda c: c[0])):
        labels[group] = label
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_clustering_matches_the_plain_reference(seed):
    rng = np.random.default_rng(seed)
    n = 14
    centres = rng.normal(size=(4, 8))
    x = centres[rng.integers(0, 4, n)] + 0.4 * rng.normal(size=(n, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d = 1 - x @ x.T
    first = rng.integers(0, 100, n)
    cannot = cannot_link_overlaps(rng.choice(["a", "b"], n), first, first + rng.integers(0, 30, n))
    for threshold in (0.2, 0.5, 0.9):
        got = constrained_agglomerative(d, cannot, threshold)
        assert np.array_equal(got, reference(d, cannot, threshold))
        together = got[:, None] == got[None, :]
        assert not (together & cannot).any()


def test_overlapping_tracklets_of_one_camera_stay_apart_however_alike():
    # Tracklets 0 and 1 look the same but overlap in camera "a": two people. Tracklet 2 (later, same
    # look) may join one of them; tracklet 3 in camera "b" at the same time may join too.
    feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.99, 0.14], [0.98, 0.2]])
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    d = 1 - feats @ feats.T
    cannot = cannot_link_overlaps(["a", "a", "a", "b"], [0, 10, 60, 0], [50, 40, 90, 50])
    assert cannot[0, 1] and cannot[1, 0] and not cannot[0, 2] and not cannot[0, 3]
    labels = constrained_agglomerative(d, cannot, threshold=0.5)
    assert labels[0] != labels[1]
    assert len(set(labels)) == 2
    no_links = constrained_agglomerative(d, np.zeros((4, 4), bool), threshold=0.5)
    assert len(set(no_links)) == 1  # the constraint, not the threshold, kept them apart


def test_clustering_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        constrained_agglomerative(np.zeros((3, 3)), np.zeros((2, 2), bool), 0.5)
