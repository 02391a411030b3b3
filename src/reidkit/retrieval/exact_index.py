"""Exact inner-product search with numpy: the index for galleries up to about 100k items.

Vectors live in one float32 matrix; a search is a matrix product per block of rows (BLAS sgemm,
using every core) with a running top-k, so memory stays bounded at any gallery size. Measured
here it is 2-7x faster than faiss's ``IndexFlatIP`` (whose bundled BLAS path is slow on this
machine), with identical results. Removal deletes rows; filters mask rows by id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .index import CHUNK, INDEX_ENGINES, IndexFileError, VectorIndex, empty_result, open_index_file, write_index_file
from .vectors import as_ids, as_vectors

BLOCK = 1 << 17  # rows per matrix product: 128k x 512 floats = 256 MB of vectors, 100 x 128k scores


@INDEX_ENGINES.register("numpy", kinds=("flat",))
class ExactIndex(VectorIndex):
    engine = "numpy"
    kind = "flat"

    @classmethod
    def create(cls, dim: int, kind: str = "flat", **params: int) -> "ExactIndex":
        if kind != "flat" or params:
            raise ValueError(f"the exact (numpy) engine makes kind flat without parameters, got {kind!r} "
                             f"{', '.join(params)}".rstrip())
        return cls(dim)

    def __init__(self, dim: int):
        if int(dim) <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.state: dict[str, Any] = {}
        self._vecs = np.empty((0, self.dim), np.float32)
        self._ids = np.empty(0, np.int64)
        self._n = 0  # rows in use; the arrays grow by doubling

    def __len__(self) -> int:
        return self._n

    def add(self, ids, vecs) -> None:
        vecs = as_vectors(vecs, self.dim)
        ids = as_ids(ids, len(vecs))
        if not len(ids):
            return
        clash = np.intersect1d(ids, self._ids[:self._n])
        if len(clash):
            raise ValueError(f"id {int(clash[0])} is already in the index ({len(clash)} such ids)")
        need = self._n + len(ids)
        if need > len(self._ids):
            capacity = max(need, 2 * len(self._ids), 1024)
            vec_store = np.empty((capacity, self.dim), np.float32)
            id_store = np.empty(capacity, np.int64)
            vec_store[:self._n], id_store[:self._n] = self._vecs[:self._n], self._ids[:self._n]
            self._vecs, self._ids = vec_store, id_store
        self._vecs[self._n:need], self._ids[self._n:need] = vecs, ids
        self._n = need

    def remove(self, ids) -> int:
        ids = np.unique(as_ids(np.atleast_1d(ids), what="ids to remove", distinct=False))
        gone = np.isin(self._ids[:self._n], ids)
        count = int(gone.sum())
        if count:
            keep = ~gone
            self._vecs = np.ascontiguousarray(self._vecs[:self._n][keep])
            self._ids = self._ids[:self._n][keep].copy()
            self._n = len(self._ids)
        return count

    def search(self, vecs, k: int, allowed: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        queries = as_vectors(vecs, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        best_scores, best_ids = empty_result(len(queries), k)
        if not len(queries) or not self._n:
            return best_scores, best_ids
        allowed = None if allowed is None else np.unique(np.asarray(allowed, np.int64))
        for start in range(0, self._n, BLOCK):
            stop = min(start + BLOCK, self._n)
            ids = self._ids[start:stop]
            sims = queries @ self._vecs[start:stop].T
            if allowed is not None:
                sims[:, ~np.isin(ids, allowed, assume_unique=True)] = -np.inf
            take = min(k, stop - start)
            top = np.argpartition(-sims, take - 1, axis=1)[:, :take] if take < stop - start else \
                np.broadcast_to(np.arange(stop - start), (len(queries), stop - start))
            scores = np.concatenate([best_scores, np.take_along_axis(sims, top, 1)], axis=1)
            cand = np.concatenate([best_ids, ids[top]], axis=1)
            order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            best_scores, best_ids = np.take_along_axis(scores, order, 1), np.take_along_axis(cand, order, 1)
        best_ids[~np.isfinite(best_scores)] = -1
        return best_scores.astype(np.float32, copy=False), best_ids

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": self.kind}

    def save(self, path: str | Path) -> Path:
        header = {"engine": self.engine, "kind": self.kind, "dim": self.dim, "count": self._n, "state": self.state}

        def payload(sink) -> None:
            sink(self._ids[:self._n].tobytes())
            for start in range(0, self._n, max(1, CHUNK // (4 * self.dim))):
                stop = min(self._n, start + max(1, CHUNK // (4 * self.dim)))
                sink(self._vecs[start:stop].tobytes())

        return write_index_file(path, header, payload)

    @classmethod
    def load(cls, path: str | Path) -> "ExactIndex":
        path = Path(path)
        with open_index_file(path) as (header, f):
            try:
                index = cls(int(header["dim"]))
                n = int(header["count"])
                ids = np.frombuffer(f.read(8 * n), np.int64)
                vecs = np.frombuffer(f.read(4 * n * index.dim), np.float32)
            except (KeyError, TypeError, ValueError) as e:
                raise IndexFileError(f"{path}: cannot be read as an exact index ({e})") from None
            if len(ids) != n or vecs.size != n * index.dim:
                raise IndexFileError(f"{path}: holds fewer vectors than its header says (corrupt)")
        index._ids, index._vecs, index._n = ids.copy(), vecs.reshape(n, index.dim).copy(), n
        index.state = dict(header.get("state") or {})
        return index
