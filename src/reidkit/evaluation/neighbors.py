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


class _TopK:
    """Running k smallest (distance, index) per row; ``threshold`` is each row's k-th distance."""

    def __init__(self, n: int, k: int):
        self.k = k
        self.dist = np.full((n, k), np.inf, np.float32)
        self.index = np.full((n, k), -1, np.int64)
        self.threshold = np.full(n, np.inf, np.float32)

    def offer(self, rows: np.ndarray, dist: np.ndarray, index: np.ndarray) -> None:
        """Merge candidates (row, distance, index); ``rows`` must be sorted."""
        if rows.size == 0:
            return
        urows, starts, counts = np.unique(rows, return_index=True, return_counts=True)
        width = int(counts.max())
        slot = np.arange(rows.size) - np.repeat(starts, counts)
        pad_d = np.full((urows.size, width), np.inf, np.float32)
        pad_i = np.full((urows.size, width), -1, np.int64)
        which = np.repeat(np.arange(urows.size), counts)
        pad_d[which, slot] = dist
        pad_i[which, slot] = index
        all_d = np.concatenate([self.dist[urows], pad_d], axis=1)
        all_i = np.concatenate([self.index[urows], pad_i], axis=1)
        part = np.argpartition(all_d, self.k - 1, axis=1)[:, : self.k]
        self.dist[urows] = np.take_along_axis(all_d, part, axis=1)
        self.index[urows] = np.take_along_axis(all_i, part, axis=1)
        self.threshold[urows] = self.dist[urows].max(axis=1)


def knn_graph(feats: np.ndarray, k: int, metric: str = "cosine", num_query: int | None = None,
              keep_query_gallery: bool = False, keep_row_max: bool = False,
              block: int = 2048) -> KnnGraph:
    """k nearest neighbours of every row of ``feats`` among all rows (itself included).

    ``metric`` is ``cosine`` (features must already be L2-normalised: the distance is ``1 - a.b``)
    or ``euclidean`` (squared). With ``keep_query_gallery``, the distances between the first
    ``num_query`` rows and the rest are returned too. Diagonal tiles come first so that every
    row has a threshold (its current k-th distance); off-diagonal tiles then only contribute the
    few entries under it, for their rows and, read by column, for their columns. Exact ties at
    a row's k-th distance are broken arbitrarily.
    """
    check_metric(metric)
    feats = np.ascontiguousarray(feats, dtype=np.float32)
    n = feats.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of features ({n}), got {k}")
    nq = num_query or 0
    sq = np.einsum("ij,ij->i", feats, feats) if metric == "euclidean" else None
    starts = list(range(0, n, block))
    bounds = [(s, min(s + block, n)) for s in starts]
    qg = np.empty((nq, n - nq), np.float32) if keep_query_gallery else None
    row_max = np.full(n, -np.inf, np.float32) if keep_row_max else None
    top = _TopK(n, k)

    def tile(bi: int, bj: int) -> np.ndarray:
        (r0, r1), (c0, c1) = bounds[bi], bounds[bj]
        d = _tile_distance(feats[r0:r1], feats[c0:c1], metric,
                           sq[r0:r1] if sq is not None else None, sq[c0:c1] if sq is not None else None)
        if row_max is not None:
            np.maximum(row_max[r0:r1], d.max(axis=1), out=row_max[r0:r1])
            if bj != bi:
                np.maximum(row_max[c0:c1], d.max(axis=0), out=row_max[c0:c1])
        if qg is not None and r0 < nq and c1 > nq:
            qr1, qc0 = min(r1, nq), max(c0, nq)
            qg[r0:qr1, qc0 - nq:c1 - nq] = d[: qr1 - r0, qc0 - c0:]
        return d

    for bi, (r0, r1) in enumerate(bounds):
        d = tile(bi, bi)
        kk = min(k, r1 - r0)
        part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < r1 - r0 else np.broadcast_to(
            np.arange(r1 - r0), d.shape)
        rows = np.repeat(np.arange(r0, r1), kk)
        top.offer(rows, np.take_along_axis(d, part, axis=1).ravel(), (part + r0).ravel())
    for bi, (r0, r1) in enumerate(bounds):
        for bj in range(bi + 1, len(bounds)):
            c0, c1 = bounds[bj]
            d = tile(bi, bj)
            under_row = d <= top.threshold[r0:r1, None]
            under_col = d <= top.threshold[None, c0:c1]
            r, c = np.nonzero(under_row | under_col)
            dv = d[r, c]
            keep = under_row[r, c]
            top.offer(r[keep] + r0, dv[keep], c[keep] + c0)
            keep = under_col[r, c]
            by_col = np.argsort(c[keep], kind="stable")
            top.offer(c[keep][by_col] + c0, dv[keep][by_col], r[keep][by_col] + r0)
    order = np.lexsort((top.index, top.dist), axis=-1)
    index = np.take_along_axis(top.index, order, axis=1)
    distance = np.take_along_axis(top.dist, order, axis=1)
    return KnnGraph(index=index, distance=distance, query_gallery=qg, row_max=row_max)


def nearest_neighbors(feats: np.ndarray, k: int, similarity: bool = False,
                      metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of each row's ``k`` nearest rows; with ``similarity``, ``1 - distance``."""
    graph = knn_graph(feats, k, metric=metric)
    if similarity:
        return graph.index, 1.0 - graph.distance
    return graph.index, graph.distance
