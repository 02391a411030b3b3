"""Metric invariants and agreement with the plain reference implementations on random problems."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from reidkit.evaluation import evaluate_rank, evaluate_rank_cuhk03, k_reciprocal_rerank, roc_curve
from reidkit.evaluation.neighbors import knn_graph
from reidkit.evaluation.query_expansion import average_query_expansion
from reidkit.evaluation.roc import pair_distances, tpr_at_fpr

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, tie_values: bool = True):
    """A random query/gallery problem; with ``tie_values`` distances come from few values (ties)."""
    nq = draw(st.integers(1, 8))
    ng = draw(st.integers(1, 30))
    n_ids = draw(st.integers(1, 5))
    n_cams = draw(st.integers(1, 3))
    ints = lambda n, hi: np.array(draw(st.lists(st.integers(0, hi - 1), min_size=n, max_size=n)), np.int64)  # noqa
    if tie_values:
        dist = ints(nq * ng, 4).reshape(nq, ng).astype(np.float32) / 2
    else:
        seed = draw(st.integers(0, 2**32 - 1))
        dist = np.random.default_rng(seed).permutation(nq * ng).reshape(nq, ng).astype(np.float32) / (nq * ng)
    return dist, ints(nq, n_ids), ints(ng, n_ids), ints(nq, n_cams), ints(ng, n_cams)


def _has_valid_query(q_pids, g_pids, q_camids, g_camids):
    return any(((g_pids == p) & (g_camids != c)).any() for p, c in zip(q_pids, q_camids))


@SETTINGS
@given(problems())
def test_rank_metrics_equal_reference_with_ties(prob):
    dist, *ids = prob
    if not _has_valid_query(*ids):
        with pytest.raises(ValueError, match="no query has a true match"):
            evaluate_rank(dist, *ids)
        return
    got = evaluate_rank(dist, *ids, max_rank=10, block_rows=3)
    cmc, aps, inps = reference.rank_metrics(dist, *ids, max_rank=10)
    np.testing.assert_allclose(got.cmc, cmc, atol=1e-12)
    np.testing.assert_allclose(got.all_ap, aps, atol=1e-12)
    np.testing.assert_allclose(got.all_inp, inps, atol=1e-12)
    assert 0 < got.mAP <= 1 and 0 < got.mINP <= 1
    assert np.all(np.diff(got.cmc) >= 0)


@SETTINGS
@given(problems(tie_values=False), st.integers(0, 2**32 - 1))
def test_rank_metrics_invariant_to_gallery_order_and_monotone_maps(prob, seed):
    dist, q_pids, g_pids, q_camids, g_camids = prob
    assume(_has_valid_query(q_pids, g_pids, q_camids, g_camids))
    base = evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids)
    perm = np.random.default_rng(seed).permutation(dist.shape[1])
    shuffled = evaluate_rank(dist[:, perm], q_pids, g_pids[perm], q_camids, g_camids[perm])
    stretched = evaluate_rank(np.exp(3 * dist.astype(np.float64)), q_pids, g_pids, q_camids, g_camids)
    for other in (shuffled, stretched):
        np.testing.assert_allclose(other.cmc, base.cmc)
        np.testing.assert_allclose(other.all_ap, base.all_ap)
        np.testing.assert_allclose(other.all_inp, base.all_inp)


def test_perfect_and_worst_rankings():
    q_pids, g_pids = np.array([1, 2]), np.array([1, 1, 2, 3, 3])
    q_cam, g_cam = np.array([0, 0]), np.array([1, 1, 1, 1, 1])
    perfect = np.where(g_pids[None] == q_pids[:, None], 0.0, 1.0)
    r = evaluate_rank(perfect, q_pids, g_pids, q_cam, g_cam)
    assert r.mAP == 1.0 and r.mINP == 1.0 and r.cmc[0] == 1.0
    worst = evaluate_rank(1.0 - perfect, q_pids, g_pids, q_cam, g_cam)
    # query 1: matches at positions 4 and 5 of 5; query 2: its match is last of 5.
    assert worst.all_ap.tolist() == pytest.approx([(1 / 4 + 2 / 5) / 2, 1 / 5])
    assert worst.cmc[0] == 0.0 and worst.cmc[4] == 1.0


def test_same_camera_matches_are_removed():
    q_pids, g_pids = np.array([1]), np.array([1, 1, 2])
    q_cam, g_cam = np.array([0]), np.array([0, 1, 0])
    dist = np.array([[0.0, 0.5, 0.2]])  # the same-camera match is nearest but does not count
    r = evaluate_rank(dist, q_pids, g_pids, q_cam, g_cam)
    assert r.cmc[0] == 0.0 and r.all_ap[0] == pytest.approx(0.5)


@SETTINGS
@given(problems())
def test_roc_equals_reference(prob):
    dist, *ids = prob
    genuine, impostor = pair_distances(dist, *ids)
    assume(genuine.size > 0 and impostor.size > 0)
    curve = roc_curve(genuine, impostor)
    fpr, tpr = reference.roc_points(genuine, impostor)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    got = tpr_at_fpr(curve, (0.1, 0.5))
    for t, v in zip((0.1, 0.5), got.values()):
        assert v == tpr[np.argmin(np.abs(fpr - t))]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.integers(1, 8), st.sampled_from(["cosine", "euclidean"]), st.integers(0, 2**32 - 1),
       st.integers(3, 17))
def test_knn_graph_equals_brute_force(n, k, metric, seed, block):
    assume(k <= n)
    x = np.random.default_rng(seed).standard_normal((n, 6)).astype(np.float32)
    if metric == "cosine":
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    graph = knn_graph(x, k, metric=metric, num_query=min(3, n - 1), keep_query_gallery=True,
                      keep_row_max=True, block=block)
    dist = reference.dense_distance(x, metric)
    np.testing.assert_array_equal(graph.index, reference.knn(dist, k))
    np.testing.assert_allclose(graph.distance, np.take_along_axis(dist, graph.index, 1), atol=1e-5)
    nq = min(3, n - 1)
    np.testing.assert_allclose(graph.query_gallery, dist[:nq, nq:], atol=1e-5)
    np.testing.assert_allclose(graph.row_max, dist.max(axis=1), atol=1e-5)


def _clustered(seed, nq, ng, dim=8, ids=6):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((ids, dim))
    pids = rng.integers(0, ids, nq + ng)
    x = (centres[pids] + 0.7 * rng.standard_normal((nq + ng, dim))).astype(np.float32)
    return x[:nq], x[nq:]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 10), st.integers(12, 40), st.sampled_from(["fastreid", "zhong"]),
       st.sampled_from(["cosine", "euclidean"]), st.integers(2, 7), st.integers(1, 3))
def test_rerank_equals_dense_reference(seed, nq, ng, variant, metric, k1, k2):
    assume(k2 <= k1)
    q, g = _clustered(seed, nq, ng)
    got = k_reciprocal_rerank(q, g, k1=k1, k2=k2, lambda_value=0.3, metric=metric, variant=variant)
    want = reference.rerank(q, g, k1=k1, k2=k2, lam=0.3, metric=metric, variant=variant)
    np.testing.assert_allclose(got, want, atol=2e-5)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.floats(1.0, 4.0))
def test_aqe_equals_reference(seed, k, alpha):
    q, g = _clustered(seed, 5, 15)
    got_q, got_g = average_query_expansion(q, g, qe_k=k, alpha=alpha)
    want_q, want_g = reference.aqe(q, g, k, alpha)
    np.testing.assert_allclose(got_q, want_q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-4, atol=1e-5)


def test_cuhk03_single_gallery_shot():
    # One query, two gallery identities with two images each; the true match is always at
    # distance 0.5, the other identity's images at 0.2 (always first) or 0.9.
    dist = np.array([[0.5, 0.5, 0.2, 0.9]])
    ids = (np.array([1]), np.array([1, 1, 2, 2]), np.array([0]), np.array([1, 1, 1, 1]))
    r = evaluate_rank_cuhk03(dist, *ids, max_rank=2, num_repeats=400, seed=1)
    # Rank-1 happens when identity 2 is represented by its 0.9 image: probability one half.
    assert 0.42 < r.cmc[0] < 0.58 and r.cmc[1] == 1.0
    assert r.all_ap[0] == pytest.approx((1 / 2 + 2 / 3) / 2)  # AP uses the whole gallery


@pytest.mark.parametrize("bad,match", [
    (dict(distmat=np.zeros((2, 3)), q_pids=np.zeros(3, int)), "q_pids must have shape"),
    (dict(q_pids=np.zeros(2)), "must hold integers"),
    (dict(distmat=np.full((2, 3), np.nan)), "NaN"),
])
def test_bad_inputs_are_named(bad, match):
    args = dict(distmat=np.zeros((2, 3)), q_pids=np.zeros(2, int), g_pids=np.zeros(3, int),
                q_camids=np.zeros(2, int), g_camids=np.ones(3, int))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        evaluate_rank(**args)
