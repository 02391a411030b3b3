"""reidkit's metrics against the numbers fast-reid's own code computed on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES, load_problem

from reidkit.evaluation import evaluate, evaluate_rank, evaluate_roc, k_reciprocal_rerank, re_ranking

IDS = ("q_pids", "g_pids", "q_camids", "g_camids")
RANK_KEYS = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP")


def test_rank_metrics_match_fastreid_cython(problem, expected):
    name, d = problem
    got = evaluate_rank(d["distmat"], *(d[k] for k in IDS)).summary()
    for key in RANK_KEYS:
        assert got[key] == pytest.approx(expected[name]["rank"][key], abs=1e-4), key


def test_tpr_at_fpr_matches_fastreid(problem, expected):
    name, d = problem
    got = evaluate_roc(d["distmat"], *(d[k] for k in IDS))
    for key, value in got.items():
        # fast-reid reports these as fractions; 1e-4 percentage points = 1e-6.
        assert value == pytest.approx(expected[name]["rank"][key], abs=1e-6), key


@pytest.mark.parametrize("variant,key", [("fastreid", "rerank_evaluator"), ("zhong", "rerank_zhong")])
def test_reranked_metrics_match_fastreid(problem, expected, variant, key):
    name, d = problem
    dist = k_reciprocal_rerank(d["q_feat"], d["g_feat"], k1=20, k2=6, lambda_value=0.3, variant=variant)
    got = evaluate_rank(dist, *(d[k] for k in IDS)).summary()
    for metric in RANK_KEYS:
        assert got[metric] == pytest.approx(expected[name][key][metric], abs=0.01), metric


def _zhong_inputs(d):
    q, g = d["q_feat"], d["g_feat"]
    return d["distmat"], 1.0 - q @ q.T, 1.0 - g @ g.T


def test_zhong_distance_matrix_matches_reference_code():
    d = load_problem("small")
    want = np.load(FIXTURES / "eval" / "small_rerank_zhong_distmat.npy")
    from_matrices = re_ranking(*_zhong_inputs(d))
    from_features = k_reciprocal_rerank(d["q_feat"], d["g_feat"], variant="zhong")
    assert np.abs(from_matrices - want).max() < 1e-5
    assert np.abs(from_features - want).max() < 1e-5


def test_zhong_metrics_from_matrices(problem, expected):
    name, d = problem
    got = evaluate_rank(re_ranking(*_zhong_inputs(d)), *(d[k] for k in IDS)).summary()
    for metric in RANK_KEYS:
        assert got[metric] == pytest.approx(expected[name]["rerank_zhong"][metric], abs=0.01), metric


def test_evaluate_uses_distmat_features_and_reranking_consistently(problem, expected):
    name, d = problem
    from_feats = evaluate({k: v for k, v in d.items() if k != "distmat"}, roc=False)
    from_dist = evaluate({k: v for k, v in d.items() if k not in ("q_feat", "g_feat")}, roc=False)
    for metric in RANK_KEYS:
        assert from_feats[metric] == pytest.approx(expected[name]["rank"][metric], abs=1e-3)
        assert from_dist[metric] == pytest.approx(expected[name]["rank"][metric], abs=1e-4)
    reranked = evaluate(d, rerank="fastreid", roc=False)
    assert reranked["mAP"] == pytest.approx(expected[name]["rerank_evaluator"]["mAP"], abs=0.01)
    with pytest.raises(ValueError, match="need q_feat and g_feat"):
        evaluate({k: v for k, v in d.items() if k not in ("q_feat", "g_feat")}, rerank="zhong")
