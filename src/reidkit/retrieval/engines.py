"""The index engines (each registers itself in ``INDEX_ENGINES``) and choosing, building and
opening an index by kind or by its file: ``flat`` (exact, numpy), ``hnsw``/``ivfpq`` (faiss),
and Milvus collections, which galleries make from their ``milvus_uri``.

Adding an engine: a module with a ``VectorIndex`` subclass registered in ``INDEX_ENGINES``, and
its import below."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import exact_index, faiss_index, milvus_index  # noqa: F401  (register the engines)
from .index import INDEX_ENGINES, IndexFileError, VectorIndex, read_header

#: Every kind an engine can make, in registration order ("flat" first: the exact one).
KINDS: tuple[str, ...] = tuple(k for e in INDEX_ENGINES.entries() for k in e.info["kinds"])
#: Below this many vectors ``auto`` picks exact search (a 100k x 512 search takes ~10 ms here).
EXACT_UP_TO = 100_000


def choose_kind(n: int) -> str:
    """The index kind ``auto`` means for a gallery of ``n`` vectors."""
    return "flat" if n < EXACT_UP_TO else "hnsw"


def check_kind(kind: str) -> str:
    if kind not in ("auto", *KINDS):
        raise ValueError(f"unknown index kind {kind!r}: expected auto, {', '.join(KINDS)}")
    return kind


def engine_for(kind: str) -> type[VectorIndex]:
    """The engine class that makes ``kind``."""
    check_kind(kind)
    return next(e.obj for e in INDEX_ENGINES.entries() if kind in e.info["kinds"])


def new_index(dim: int, kind: str, **params: int) -> VectorIndex:
    """An empty index (check ``needs_training`` before adding to it)."""
    if check_kind(kind) == "auto":
        raise ValueError("kind auto needs the gallery size: use choose_kind(n) first")
    return engine_for(kind).create(dim, kind, **params)


def build_index(dim: int, ids, vecs, kind: str = "auto", sample_size: int = 100_000, **params: int) -> VectorIndex:
    """An index of ``kind`` (``auto``: by size) holding ``vecs``; one that needs training learns
    from up to ``sample_size`` of them (:func:`~reidkit.retrieval.faiss_index.training_rows`)."""
    vecs = np.asarray(vecs)
    kind = choose_kind(len(vecs)) if check_kind(kind) == "auto" else kind
    index = new_index(dim, kind, **params)
    if index.needs_training:
        index.train(vecs[faiss_index.training_rows(len(vecs), sample_size)])
    index.add(ids, vecs)
    return index


def open_index(path: str | Path) -> VectorIndex:
    """Load an index saved by any registered engine."""
    path = Path(path)
    engine = read_header(path)["engine"]
    if engine not in INDEX_ENGINES:
        raise IndexFileError(f"{path}: unknown index engine {engine!r} (known: {', '.join(INDEX_ENGINES)})")
    return INDEX_ENGINES.get(engine).load(path)


__all__ = ["EXACT_UP_TO", "INDEX_ENGINES", "KINDS", "build_index", "check_kind", "choose_kind", "engine_for",
           "new_index", "open_index"]
