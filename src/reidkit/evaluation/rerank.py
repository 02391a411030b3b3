"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), in two variants (numpy only).

* ``fastreid``: what fast-reid's evaluator does with TEST.RERANK: exact kNN by squared L2 between
  (L2-normalised, for the cosine metric) features, k-reciprocal sets from ``k1`` neighbours,
  weights ``softmax(-squared L2)``, Jaccard distance mixed with the plain query/gallery distance.
* ``zhong``: the original formulation: squared distances normalised by each item's largest one,
  ``k1 + 1`` neighbours, weights ``exp(-normalised distance)``.

Both share the same steps: k-reciprocal sets, their expansion, the sparse weight matrix V, local
query expansion over ``k2`` neighbours, and the Jaccard distance between query and gallery rows
of V. Unlike the reference code, nothing of size (N, N) is ever held: the kNN graph comes from
tiled distance computation and V is sparse, so memory stays near the size of the output.
"""

from __future__ import annotations

import numpy as np

from .distance import check_metric, l2_normalize
from .neighbors import knn_graph

VARIANTS = ("fastreid", "zhong")


def _reciprocal_mask(rank: np.ndarray, width: int, rows: slice) -> np.ndarray:
    """mask[i, p]: item i is among the ``width`` nearest of its own p-th nearest neighbour."""
    head = rank[rows, :width]
    ids = np.arange(rows.start, rows.stop)[:, None, None]
    return (rank[head, :width] == ids).any(axis=-1)


def expansion_pairs(rank: np.ndarray, width: int, half_width: int, chunk: int = 1024):
    """(rows, cols) of every item's expanded k-reciprocal set, sorted by row then column.

    The set of ``i`` is its k-reciprocal neighbours R(i) (``width`` nearest) plus R'(c) of each
    c in R(i) (``half_width`` nearest) where R'(c) shares more than 2/3 of its members with R(i).
    """
    n = rank.shape[0]
    recip_half = np.concatenate([_reciprocal_mask(rank, half_width, slice(s, min(s + chunk, n)))
                                 for s in range(0, n, chunk)])
    keys = []
    for s in range(0, n, chunk):
        rows = slice(s, min(s + chunk, n))
        ids = np.arange(rows.start, rows.stop)
        head = rank[rows, :width]  # (b, W)
        recip = _reciprocal_mask(rank, width, rows)  # (b, W)
        cand_members = rank[head, :half_width]  # (b, W, H)
        cand_mask = recip_half[head]  # (b, W, H)
        in_set = ((cand_members[..., None] == head[:, None, None, :]) & recip[:, None, None, :]).any(-1)
        inter = np.count_nonzero(in_set & cand_mask, axis=-1)
        accept = recip & (inter > (2.0 / 3.0) * np.count_nonzero(cand_mask, axis=-1))
        i_rec, p_rec = np.nonzero(recip)
        keys.append(ids[i_rec] * n + head[i_rec, p_rec])
        extra = accept[..., None] & cand_mask
        i_ex, p_ex, m_ex = np.nonzero(extra)
        keys.append(ids[i_ex] * n + cand_members[i_ex, p_ex, m_ex])
    keys = np.unique(np.concatenate(keys))
    return keys // n, keys % n


def _row_normalise(rows: np.ndarray, vals: np.ndarray, n: int) -> np.ndarray:
    sums = np.bincount(rows, weights=vals, minlength=n)
    return vals / sums[rows]


def _csr(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n: int):
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return indptr, cols, vals


def _expand_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(start, start + length)`` for each pair, without a Python loop."""
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def _gather_rows(indptr, indices, data, which: np.ndarray):
    """Concatenated entries of CSR rows ``which``: (position in ``which``, column, value)."""
    starts = indptr[which]
    lengths = indptr[which + 1] - starts
    owner = np.repeat(np.arange(which.size), lengths)
    pos = _expand_ranges(starts, lengths)
    return owner, indices[pos], data[pos]


def local_query_expansion(rows, cols, vals, rank: np.ndarray, k2: int, n: int):
    """V_qe[i] = mean of V over the ``k2`` nearest neighbours of i, as (rows, cols, vals)."""
    if k2 == 1:
        return rows, cols, vals
    indptr, indices, data = _csr(rows, cols, vals, n)
    out_rows, out_cols, out_vals = [], [], []
    chunk = 4096
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        nbrs = rank[s:e, :k2].ravel()
        owner, c, v = _gather_rows(indptr, indices, data, nbrs)
        row = s + owner // k2
        key = row * n + c
        uniq, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=v) / k2
        out_rows.append(uniq // n)
        out_cols.append(uniq % n)
        out_vals.append(summed)
    return np.concatenate(out_rows), np.concatenate(out_cols), np.concatenate(out_vals)


def jaccard_query_gallery(rows, cols, vals, n: int, num_query: int, chunk: int = 256) -> np.ndarray:
    """1 - sum(min(V_i, V_j)) / sum(max(V_i, V_j)) for query rows i and gallery rows j of V.

    Rows of V sum to 1, so the denominator is ``2 - sum(min)``; computed through an inverted
    index of V's columns restricted to gallery rows, never densifying V.
    """
    ng = n - num_query
    gal = rows >= num_query
    order = np.lexsort((rows[gal], cols[gal]))
    g_rows = rows[gal][order] - num_query
    g_cols = cols[gal][order]
    g_vals = vals[gal][order]
    col_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(g_cols, minlength=n), out=col_ptr[1:])
    q_indptr, q_indices, q_data = _csr(rows, cols, vals, n)
    out = np.empty((num_query, ng), np.float32)
    for s in range(0, num_query, chunk):
        e = min(s + chunk, num_query)
        owner, k, v = _gather_rows(q_indptr, q_indices, q_data, np.arange(s, e))
        starts = col_ptr[k]
        lengths = col_ptr[k + 1] - starts
        rep_owner = np.repeat(owner, lengths)
        pos = _expand_ranges(starts, lengths)
        contrib = np.minimum(np.repeat(v, lengths), g_vals[pos])
        temp_min = np.bincount(rep_owner * ng + g_rows[pos], weights=contrib,
                               minlength=(e - s) * ng).reshape(e - s, ng)
        out[s:e] = 1.0 - temp_min / (2.0 - temp_min)
    return out


def _pair_dot(feats: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """feats[rows[p]] . feats[cols[p]] for pairs sorted by row: one small matrix-vector product
    per row, so that each row's features are read once."""
    out = np.empty(rows.size, np.float32)
    bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1], True])
    for s, e in zip(bounds[:-1], bounds[1:]):
        out[s:e] = feats[cols[s:e]] @ feats[rows[s]]
    return out


def _check_params(k1: int, k2: int, lambda_value: float, n: int) -> None:
    if k1 < 1 or k2 < 1 or k2 > k1:
        raise ValueError(f"re-ranking needs 1 <= k2 <= k1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"re-ranking lambda must be in [0, 1], got {lambda_value}")
    if k1 + 1 > n:
        raise ValueError(f"re-ranking with k1={k1} needs more than {k1} images in query + gallery, got {n}")


def k_reciprocal_rerank(q_feat: np.ndarray, g_feat: np.ndarray, k1: int = 20, k2: int = 6,
                        lambda_value: float = 0.3, metric: str = "cosine",
                        variant: str = "fastreid") -> np.ndarray:
    """Re-ranked (num_query, num_gallery) distance from features; see the module docstring."""
    check_metric(metric)
    if variant not in VARIANTS:
        raise ValueError(f"unknown re-ranking variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    feats = np.concatenate([np.asarray(q_feat, np.float32), np.asarray(g_feat, np.float32)])
    if metric == "cosine":
        feats = l2_normalize(feats)
    nq, n = len(q_feat), len(feats)
    _check_params(k1, k2, lambda_value, n)
    half = int(np.around(k1 / 2.0)) + 1
    if variant == "fastreid":
        graph = knn_graph(feats, k1, metric=metric, num_query=nq, keep_query_gallery=True)
        width, half = k1, min(half, k1)
    else:
        graph = knn_graph(feats, k1 + 1, metric=metric, num_query=nq, keep_query_gallery=True,
                          keep_row_max=True)
        width = k1 + 1
    rank = graph.index
    rows, cols = expansion_pairs(rank, width, half)
    dots = _pair_dot(feats, rows, cols)
    if variant == "fastreid":
        sq = np.einsum("ij,ij->i", feats, feats)
        weights = np.exp(-(sq[rows] + sq[cols] - 2.0 * dots).astype(np.float64))
        original = graph.query_gallery
    else:
        if metric == "cosine":
            pair_dist = 1.0 - dots.astype(np.float64)
        else:
            sq = np.einsum("ij,ij->i", feats, feats)
            pair_dist = (sq[rows] + sq[cols] - 2.0 * dots).astype(np.float64)
        row_max_sq = np.square(graph.row_max.astype(np.float64))
        weights = np.exp(-np.square(pair_dist) / row_max_sq[rows])
        original = (np.square(graph.query_gallery.astype(np.float64)) / row_max_sq[:nq, None]).astype(np.float32)
    vals = _row_normalise(rows, weights, n)
    rows, cols, vals = local_query_expansion(rows, cols, vals, rank, k2, n)
    jaccard = jaccard_query_gallery(rows, cols, vals, n, nq)
    if variant == "fastreid":
        np.maximum(jaccard, 0.0, out=jaccard)
    jaccard *= 1.0 - lambda_value
    jaccard += lambda_value * original
    return jaccard


def re_ranking(q_g_dist: np.ndarray, q_q_dist: np.ndarray, g_g_dist: np.ndarray, k1: int = 20,
               k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """Zhong et al.'s re-ranking from the three distance matrices, as in their reference code
    (distances squared, each column divided by its maximum). Needs O(N^2) memory for the inputs;
    prefer :func:`k_reciprocal_rerank` when features are at hand."""
    q_g = np.asarray(q_g_dist, np.float32)
    nq, ng = q_g.shape
    if np.shape(q_q_dist) != (nq, nq) or np.shape(g_g_dist) != (ng, ng):
        raise ValueError(f"re_ranking expects q_q ({nq}, {nq}) and g_g ({ng}, {ng}) to match q_g {q_g.shape}, "
                         f"got {np.shape(q_q_dist)} and {np.shape(g_g_dist)}")
    n = nq + ng
    _check_params(k1, k2, lambda_value, n)
    full = np.block([[np.asarray(q_q_dist, np.float32), q_g], [q_g.T, np.asarray(g_g_dist, np.float32)]])
    np.square(full, out=full)
    full /= full.max(axis=0)
    norm = np.ascontiguousarray(full.T)  # row i holds column i divided by that column's maximum
    del full
    width = k1 + 1
    rank = np.empty((n, width), np.int64)
    for s in range(0, n, 2048):
        block = norm[s:s + 2048]
        part = np.argpartition(block, width - 1, axis=1)[:, :width]
        vals = np.take_along_axis(block, part, axis=1)
        rank[s:s + 2048] = np.take_along_axis(part, np.lexsort((part, vals), axis=-1), axis=1)
    rows, cols = expansion_pairs(rank, width, int(np.around(k1 / 2.0)) + 1)
    vals = _row_normalise(rows, np.exp(-norm[rows, cols].astype(np.float64)), n)
    rows, cols, vals = local_query_expansion(rows, cols, vals, rank, k2, n)
    jaccard = jaccard_query_gallery(rows, cols, vals, n, nq)
    jaccard *= 1.0 - lambda_value
    jaccard += lambda_value * norm[:nq, nq:]
    return jaccard
