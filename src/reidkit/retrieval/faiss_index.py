"""faiss engine for large galleries: HNSW graph (``hnsw``) or IVF-PQ (``ivfpq``).

``hnsw`` answers a query in milliseconds at a million vectors, at a memory cost of about
(dim * 4 + 2 * M * 8) bytes a vector; its recall depends on how much structure the data has
(see benchmarks/bench_gallery.py). ``ivfpq`` trains a coarse quantizer and product codes on a
sample and stores ``pq_m`` 4-bit codes a vector (scanned with SIMD: faiss's "fast scan"), for
galleries that would not fit in memory otherwise; the codes only approximate the scores, so
``Gallery.search`` re-scores the best candidates with the stored vectors. Exact search is ``exact_index.ExactIndex``.

Removal: ``ivfpq`` deletes in place; HNSW graphs cannot drop nodes, so removed ids are
remembered and excluded at search time until the next rebuild.

The file (see ``index.write_index_file``) holds the removed ids and faiss's own serialisation,
checksummed: faiss reads nothing before the checksum matched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .index import CHUNK, INDEX_ENGINES, IndexFileError, VectorIndex, empty_result, open_index_file, write_index_file
from .vectors import as_ids, as_vectors

KINDS = ("hnsw", "ivfpq")
DEFAULTS: dict[str, dict[str, int]] = {
    "hnsw": {"M": 32, "ef_construction": 128, "ef_search": 128},
    "ivfpq": {"nlist": 0, "pq_m": 0, "nprobe": 256},  # 0: chosen from the data size and dimension
}


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError("the faiss engine needs faiss: pip install faiss-cpu") from None
    return faiss


def training_rows(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted row numbers of up to ``size`` of ``n`` items, drawn without replacement by a seeded
    generator: the same data always trains the same IVF-PQ index (the one sampling rule of the
    package, used by ``build`` and by galleries)."""
    return np.sort(np.random.default_rng(seed).permutation(n)[:size])


@INDEX_ENGINES.register("faiss", kinds=KINDS)
class FaissIndex(VectorIndex):
    engine = "faiss"

    @classmethod
    def create(cls, dim: int, kind: str = "hnsw", **params: int) -> "FaissIndex":
        return cls(dim, kind, **params)

    @property
    def approximate_scores(self) -> bool:
        return self.kind == "ivfpq"  # 4-bit product codes

    @property
    def needs_training(self) -> bool:
        return self._index is None

    def __init__(self, dim: int, kind: str = "hnsw", **params: int):
        if kind not in KINDS:
            raise ValueError(f"unknown faiss index kind {kind!r}: expected one of {', '.join(KINDS)}")
        if int(dim) <= 0:
            raise ValueError(f"dimension must be positive, got {dim}")
        unknown = set(params) - set(DEFAULTS[kind])
        if unknown:
            raise ValueError(f"unknown {kind} parameter(s) {', '.join(sorted(unknown))}: "
                             f"expected {', '.join(DEFAULTS[kind]) or 'none'}")
        self.dim, self.kind = int(dim), kind
        self.params = {**DEFAULTS[kind], **{k: int(v) for k, v in params.items()}}
        self.state: dict[str, Any] = {}
        self._removed = np.empty(0, np.int64)  # HNSW tombstones, sorted
        self._index = self._new_index() if kind != "ivfpq" else None  # IVF-PQ waits for training data

    # -- construction -----------------------------------------------------------------------
    def _new_index(self):
        faiss = _faiss()
        if self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.params["M"], faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.params["ef_construction"]
            return faiss.IndexIDMap2(inner)
        raise AssertionError(self.kind)

    def train(self, sample) -> None:
        """Train IVF-PQ's coarse and product quantizers on a sample of the data (no-op otherwise)."""
        if self.kind != "ivfpq":
            return
        faiss = _faiss()
        sample = as_vectors(sample, self.dim, "training sample")
        # about 4 sqrt(n) lists, with the 39 training points a centroid that faiss asks for
        nlist = self.params["nlist"] or int(max(16, min(4 * np.sqrt(len(sample)), len(sample) // 39, 65536)))
        # 4-bit codes for faiss's SIMD "fast scan": one per 4 dimensions, at most 128 (64 bytes)
        pq_m = self.params["pq_m"] or next(m for m in (128, 96, 64, 48, 32, 16, 8, 4, 2)
                                           if self.dim % m == 0 and m <= max(2, self.dim // 4))
        if self.dim % pq_m:
            raise ValueError(f"ivfpq: pq_m={pq_m} does not divide the dimension {self.dim}")
        if len(sample) < max(39 * nlist, 39 * 256):
            raise ValueError(f"ivfpq needs at least {max(39 * nlist, 39 * 256)} training vectors, got {len(sample)}: "
                             "use kind flat for small galleries")
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFPQFastScan(quantizer, self.dim, nlist, pq_m, 4, faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        index.nprobe = self.params["nprobe"]
        self.params.update(nlist=nlist, pq_m=pq_m)
        self._quantizer, self._index = quantizer, index

    # -- the interface ------------------------------------------------------------------------
    def _all_ids(self) -> np.ndarray:
        faiss = _faiss()
        if self._index is None:
            return np.empty(0, np.int64)
        if self.kind == "ivfpq":
            inv = self._index.invlists
            parts = [faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy()
                     for i in range(self._index.nlist) if inv.list_size(i)]
            return np.concatenate(parts) if parts else np.empty(0, np.int64)
        return faiss.vector_to_array(self._index.id_map)

    def add(self, ids, vecs) -> None:
        vecs = as_vectors(vecs, self.dim)
        ids = as_ids(ids, len(vecs))
        if not len(ids):
            return
        if self._index is None:
            raise ValueError("ivfpq index is not trained: call train(sample) first, or use engines.build_index")
        clash = np.intersect1d(ids, self._all_ids())
        if len(clash):
            raise ValueError(f"id {int(clash[0])} is already in the index ({len(clash)} such ids)")
        self._index.add_with_ids(vecs, ids)

    def remove(self, ids) -> int:
        faiss = _faiss()
        ids = np.unique(as_ids(np.atleast_1d(ids), what="ids to remove", distinct=False))
        if self._index is None or not len(ids):
            return 0
        present = np.intersect1d(ids, self._all_ids())
        if self.kind == "hnsw":
            fresh = np.setdiff1d(present, self._removed)
            self._removed = np.union1d(self._removed, fresh)
            return len(fresh)
        return int(self._index.remove_ids(faiss.IDSelectorBatch(present))) if len(present) else 0

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal) - len(self._removed)

    def _selector(self, allowed: Optional[np.ndarray]):
        faiss = _faiss()
        keep = []  # faiss selectors hold raw pointers: the arrays must outlive the search
        sel = None
        if allowed is not None:
            allowed = np.ascontiguousarray(allowed, np.int64)
            keep.append(allowed)
            sel = faiss.IDSelectorBatch(allowed)
        if len(self._removed):
            removed = faiss.IDSelectorBatch(self._removed)
            notremoved = faiss.IDSelectorNot(removed)
            keep += [removed, notremoved]
            sel = notremoved if sel is None else faiss.IDSelectorAnd(sel, notremoved)
        keep.append(sel)
        return sel, keep

    def search(self, vecs, k: int, allowed: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        vecs = as_vectors(vecs, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if not len(vecs) or not len(self) or (allowed is not None and not len(allowed)):
            return empty_result(len(vecs), k)
        sel, keep = self._selector(allowed)
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.params["ef_search"], k))
        else:
            params = faiss.SearchParametersIVF(nprobe=self.params["nprobe"])
        if sel is not None:
            params.sel = sel
        scores, ids = self._index.search(vecs, k, params=params)
        del keep
        scores[ids < 0] = -np.inf
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "kind": self.kind, **self.params,
                **({"removed_pending_rebuild": len(self._removed)} if len(self._removed) else {})}

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        faiss = _faiss()
        if self._index is None:
            raise ValueError("an untrained ivfpq index has nothing to save")
        header = {"engine": self.engine, "kind": self.kind, "dim": self.dim, "params": self.params,
                  "state": self.state, "removed": len(self._removed)}

        def payload(sink) -> None:
            sink(self._removed.tobytes())
            faiss.write_index(self._index, faiss.PyCallbackIOWriter(sink, CHUNK))

        return write_index_file(path, header, payload)

    @classmethod
    def load(cls, path: str | Path) -> "FaissIndex":
        faiss = _faiss()
        path = Path(path)
        with open_index_file(path) as (header, f):
            try:
                kind, dim, params = header["kind"], int(header["dim"]), dict(header["params"])
                index = cls(dim, kind, **params)
                index._removed = np.frombuffer(f.read(8 * int(header["removed"])), np.int64).copy()
                index._index = faiss.read_index(faiss.PyCallbackIOReader(f.read, CHUNK))
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                raise IndexFileError(f"{path}: cannot be read as a faiss index ({e})") from None
        if index._index.d != dim:
            raise IndexFileError(f"{path}: header says dimension {dim}, the index has {index._index.d}")
        if kind == "ivfpq":
            index._index.nprobe = index.params["nprobe"]
        index.state = dict(header.get("state") or {})
        return index
