"""Plain, obviously-correct implementations that the fast code is checked against.

Slow on purpose: full stable sorts, dense matrices, Python sets and loops straight from the
definitions (Market-1501 protocol; Zhong et al. 2017 for re-ranking; Chum et al. for AQE).
"""

from __future__ import annotations

import numpy as np


def rank_metrics(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """(cmc, aps, inps) over queries that have a true match; ties broken by gallery index."""
    cmcs, aps, inps = [], [], []
    max_rank = min(max_rank, distmat.shape[1])
    for q in range(distmat.shape[0]):
        order = np.argsort(distmat[q], kind="stable")
        keep = [j for j in order if not (g_pids[j] == q_pids[q] and g_camids[j] == q_camids[q])]
        hits = [g_pids[j] == q_pids[q] for j in keep]
        if not any(hits):
            continue
        positions = [i for i, h in enumerate(hits) if h]
        cmc = np.zeros(max_rank)
        if positions[0] < max_rank:
            cmc[positions[0]:] = 1
        cmcs.append(cmc)
        aps.append(np.mean([(n + 1) / (p + 1) for n, p in enumerate(positions)]))
        inps.append(len(positions) / (positions[-1] + 1))
    return np.mean(cmcs, axis=0), np.array(aps), np.array(inps)


def roc_points(genuine, impostor):
    """ROC with impostor pairs as positives and distance as score, one point per distinct threshold,
    collinear intermediate points dropped, (0, 0) prepended."""
    genuine, impostor = list(genuine), list(impostor)
    thresholds = sorted(set(genuine) | set(impostor), reverse=True)
    tps = [sum(x >= t for x in impostor) for t in thresholds]
    fps = [sum(x >= t for x in genuine) for t in thresholds]
    keep = [0] + [i for i in range(1, len(thresholds) - 1)
                  if (tps[i + 1] - tps[i]) != (tps[i] - tps[i - 1]) or (fps[i + 1] - fps[i]) != (fps[i] - fps[i - 1])]
    if len(thresholds) > 1:
        keep.append(len(thresholds) - 1)
    if len(thresholds) <= 2:
        keep = list(range(len(thresholds)))
    fpr = [0.0] + [fps[i] / len(genuine) for i in keep]
    tpr = [0.0] + [tps[i] / len(impostor) for i in keep]
    return np.array(fpr), np.array(tpr)


def dense_distance(x, metric):
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        return 1.0 - x.astype(np.float64) @ x.T.astype(np.float64)
    x = x.astype(np.float64)
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)


def knn(dist, k):
    """Each row's k nearest by (distance, index)."""
    return np.array([sorted(range(dist.shape[1]), key=lambda j: (dist[i, j], j))[:k] for i in range(dist.shape[0])])


def _reciprocal(rank, i, width):
    return [j for j in rank[i, :width] if i in rank[j, :width]]


def rerank(q_feat, g_feat, k1=20, k2=6, lam=0.3, metric="cosine", variant="fastreid"):
    """Dense k-reciprocal re-ranking straight from its definition."""
    feats = np.concatenate([q_feat, g_feat]).astype(np.float64)
    if metric == "cosine":
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    n, nq = len(feats), len(q_feat)
    dist = dense_distance(feats, metric)
    sq_l2 = dense_distance(feats, "euclidean")
    if variant == "fastreid":
        rank = knn(dist, k1)
        width, half = k1, min(int(np.around(k1 / 2)) + 1, k1)
        weight_of = lambda i, js: np.exp(-sq_l2[i, js])  # noqa: E731
        original = dist[:nq, nq:]
    else:
        d2 = dist ** 2
        norm = d2 / d2.max(axis=1, keepdims=True)
        rank = knn(norm, k1 + 1)
        width, half = k1 + 1, int(np.around(k1 / 2)) + 1
        weight_of = lambda i, js: np.exp(-norm[i, js])  # noqa: E731
        original = norm[:nq, nq:]
    V = np.zeros((n, n))
    for i in range(n):
        r = set(_reciprocal(rank, i, width))
        expansion = set(r)
        for c in r:
            rc = set(_reciprocal(rank, c, half))
            if len(rc & r) > 2 / 3 * len(rc):
                expansion |= rc
        js = sorted(expansion)
        w = weight_of(i, js)
        V[i, js] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(nq, n):
            jac[i, j - nq] = 1 - np.minimum(V[i], V[j]).sum() / np.maximum(V[i], V[j]).sum()
    return jac * (1 - lam) + original * lam


def aqe(q_feat, g_feat, k, alpha):
    feats = np.concatenate([q_feat, g_feat]).astype(np.float64)
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    sims = unit @ unit.T
    out = np.zeros_like(feats)
    for i in range(len(feats)):
        nbrs = sorted(range(len(feats)), key=lambda j: (-sims[i, j], j))[:k]
        out[i] = np.mean([feats[j] * max(sims[i, j], 0.0) ** alpha for j in nbrs], axis=0)
    return out[: len(q_feat)], out[len(q_feat):]
