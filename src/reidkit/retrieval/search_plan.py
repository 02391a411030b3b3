"""How a gallery answers a search: which items the filters allow, exact search of a small
selection or the index otherwise, exact re-scoring where the index's scores are approximate,
and query expansion / re-ranking (the algorithms themselves live in :mod:`reidkit.evaluation`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import engines
from .index import empty_result
from .index_cache import IndexCache
from .store import GalleryStore

#: Filtered searches allowing at most this many items are answered exactly from the store's vectors.
EXACT_FILTER_LIMIT = 50_000
REFINE = 10  # candidates per result taken from an approximate index, re-scored exactly with the stored vectors


class SearchPlanner:
    """Nearest items by cosine similarity over a store and its index."""

    def __init__(self, store: GalleryStore, cache: IndexCache):
        self.store, self.cache = store, cache

    def nearest(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (Q, k), best first; only ``allowed`` ids when given."""
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            return self._exact(queries, k, allowed)
        index = self.cache.index
        if not index.approximate_scores:
            return index.search(queries, k, allowed)
        _, candidates = index.search(queries, REFINE * k, allowed)
        scores, ids = empty_result(len(queries), k)
        unique = np.unique(candidates[candidates >= 0])
        stored = self.store.vectors_of(unique) if len(unique) else np.zeros((0, self.store.dim), np.float32)
        for row, found in enumerate(candidates):
            found = found[found >= 0]
            if not len(found):
                continue
            exact = stored[np.searchsorted(unique, found)] @ queries[row]  # one SQLite read for all rows
            order = np.argsort(-exact, kind="stable")[:k]
            scores[row, :len(order)], ids[row, :len(order)] = exact[order], found[order]
        return scores, ids

    def _exact(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a small allowed set, from the store's vectors (no approximation)."""
        subset = engines.new_index(self.store.dim, "flat")
        if len(allowed):
            subset.add(allowed, self.store.vectors_of(allowed))
        return subset.search(queries, k)

    def expand(self, queries: np.ndarray, allowed: Optional[np.ndarray], qe_k: int = 5) -> np.ndarray:
        """Each query replaced by the AQE mean of itself and its ``qe_k`` nearest items (alpha 3, as fast-reid)."""
        from ..evaluation.distance import l2_normalize
        from ..evaluation.query_expansion import weighted_mean

        _, ids = self.nearest(queries, qe_k, allowed)
        out = np.empty_like(queries)
        for row, q in enumerate(queries):
            found = ids[row][ids[row] >= 0]
            neigh = self.store.vectors_of(found) if len(found) else np.zeros((0, self.store.dim), np.float32)
            group = np.concatenate([q[None], neigh])
            out[row] = weighted_mean(group[None], (group @ q)[None], alpha=3.0)[0]
        return l2_normalize(out)

    def rerank(self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray):
        """The candidates of each query re-ordered by k-reciprocal re-ranking among themselves;
        (scores, ids, re-ranked distances)."""
        from ..evaluation.rerank import k_reciprocal_rerank

        new_scores, new_ids = np.full_like(scores, -np.inf), np.full_like(ids, -1)
        distances = np.full(scores.shape, np.nan, np.float32)
        for row, q in enumerate(queries):
            valid = ids[row] >= 0
            cand = ids[row][valid]
            if len(cand) < 2:
                new_scores[row, :len(cand)], new_ids[row, :len(cand)] = scores[row][valid], cand
                continue
            k1 = min(20, len(cand))
            k2 = min(6, k1)
            dist = k_reciprocal_rerank(q[None], self.store.vectors_of(cand), k1=k1, k2=k2)[0]
            order = np.argsort(dist, kind="stable")
            new_ids[row, :len(cand)] = cand[order]
            new_scores[row, :len(cand)] = scores[row][valid][order]
            distances[row, :len(cand)] = dist[order]
        return new_scores, new_ids, distances
