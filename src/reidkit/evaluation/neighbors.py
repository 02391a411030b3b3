"""Exact k-nearest-neighbour graph of a feature set, computed in tiles (numpy only).

The all-pairs distance matrix is never held in memory: it is computed tile by tile, and since it
is symmetric only the tiles on and above the diagonal are computed; each tile gives candidates to
its rows and, transposed, to its columns. Optionally the tiles also yield the query x gallery
block (queries are the first ``num_query`` rows) and each row's maximum distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .distance import check_metric


@dataclass
class KnnGraph:
    """``index[i]`` are the ``k`` nearest items to item ``i`` (itself included), by ascending
    ``distance`` and then index; ``query_gallery`` and ``row_max`` when asked for."""

    index: np.ndarray
    distance: np.ndarray
    query_gallery: np.ndarray | None = None
    row_max: np.ndarray | None = None


def _tile_distance(a, b, metric, sq_a, sq_b):
    d = a @ b.T
    if metric == "cosine":
        np.subtract(1.0, d, out=d)
    else:
        d *= -2.0
        d += sq_a[:, None]
        d += sq_b[None, :]
    return d


def _smallest(d: np.ndarray, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, d.shape[1])
    part = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.broadcast_to(
        np.arange(d.shape[1]), d.shape).copy()
    return np.take_along_axis(d, part, axis=1), part + offset


def knn_graph(feats: np.ndarray, k: int, metric: str = "cosine", num_query: int | None = None,
              keep_query_gallery: bool = False, keep_row_max: bool = False,
              block: int = 2048) -> KnnGraph:
    """k nearest neighbours of every row of ``feats`` among all rows (itself included).

    ``metric`` is ``cosine`` (features must already be L2-normalised: the distance is ``1 - a.b``)
    or ``euclidean`` (squared). With ``keep_query_gallery``, the distances between the first
    ``num_query`` rows and the rest are returned too.
    """
    check_metric(metric)
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    n = feats.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of features ({n}), got {k}")
    nq = num_query or 0
    sq = np.einsum("ij,ij->i", feats, feats) if metric == "euclidean" else None
    starts = list(range(0, n, block))
    cand_d: list[list[np.ndarray]] = [[] for _ in starts]
    cand_i: list[list[np.ndarray]] = [[] for _ in starts]
    qg = np.empty((nq, n - nq), np.float32) if keep_query_gallery else None
    row_max = np.full(n, -np.inf, np.float32) if keep_row_max else None
    for bi, r0 in enumerate(starts):
        r1 = min(r0 + block, n)
        a = feats[r0:r1]
        sq_a = sq[r0:r1] if sq is not None else None
        for bj in range(bi, len(starts)):
            c0 = starts[bj]
            c1 = min(c0 + block, n)
            d = _tile_distance(a, feats[c0:c1], metric, sq_a, sq[c0:c1] if sq is not None else None)
            vals, idx = _smallest(d, k, c0)
            cand_d[bi].append(vals)
            cand_i[bi].append(idx)
            if row_max is not None:
                np.maximum(row_max[r0:r1], d.max(axis=1), out=row_max[r0:r1])
            if bj != bi:
                dt = np.ascontiguousarray(d.T)
                vals, idx = _smallest(dt, k, r0)
                cand_d[bj].append(vals)
                cand_i[bj].append(idx)
                if row_max is not None:
                    np.maximum(row_max[c0:c1], dt.max(axis=1), out=row_max[c0:c1])
            if qg is not None and r0 < nq and c1 > nq:
                qr1 = min(r1, nq)
                qc0 = max(c0, nq)
                qg[r0:qr1, qc0 - nq:c1 - nq] = d[: qr1 - r0, qc0 - c0:]
    index = np.empty((n, k), np.int64)
    distance = np.empty((n, k), np.float32)
    for bi, r0 in enumerate(starts):
        dd = np.concatenate(cand_d[bi], axis=1)
        ii = np.concatenate(cand_i[bi], axis=1)
        order = np.lexsort((ii, dd), axis=-1)[:, :k]
        r1 = r0 + dd.shape[0]
        index[r0:r1] = np.take_along_axis(ii, order, axis=1)
        distance[r0:r1] = np.take_along_axis(dd, order, axis=1)
    return KnnGraph(index=index, distance=distance, query_gallery=qg, row_max=row_max)


def nearest_neighbors(feats: np.ndarray, k: int, similarity: bool = False,
                      metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each row's ``k`` nearest rows; with ``similarity``, ``1 - distance``."""
    graph = knn_graph(feats, k, metric=metric)
    if similarity:
        return graph.index, 1.0 - graph.distance
    return graph.index, graph.distance
