"""Choosing and building an index by kind: ``flat`` (exact, numpy), ``hnsw``/``ivfpq`` (faiss)."""

from __future__ import annotations

import numpy as np

from .exact_index import ExactIndex
from .faiss_index import FaissIndex
from .index import VectorIndex

KINDS = ("flat", "hnsw", "ivfpq")
#: Below this many vectors ``auto`` picks exact search (a 100k x 512 search takes ~10 ms here).
EXACT_UP_TO = 100_000


def choose_kind(n: int) -> str:
    """The index kind ``auto`` means for a gallery of ``n`` vectors."""
    return "flat" if n < EXACT_UP_TO else "hnsw"


def check_kind(kind: str) -> str:
    if kind not in ("auto", *KINDS):
        raise ValueError(f"unknown index kind {kind!r}: expected auto, {', '.join(KINDS)}")
    return kind


def new_index(dim: int, kind: str, **params: int) -> VectorIndex:
    """An empty index (``ivfpq`` still needs ``train``)."""
    if check_kind(kind) == "auto":
        raise ValueError("kind auto needs the gallery size: use choose_kind(n) first")
    return ExactIndex(dim) if kind == "flat" else FaissIndex(dim, kind, **params)


def build_index(dim: int, ids, vecs, kind: str = "auto", **params: int) -> VectorIndex:
    """An index of ``kind`` (``auto``: by size) holding ``vecs``."""
    kind = choose_kind(len(np.asarray(vecs))) if check_kind(kind) == "auto" else kind
    if kind == "flat":
        if params:
            raise ValueError(f"the flat index takes no parameters, got {', '.join(params)}")
        index = ExactIndex(dim)
        index.add(ids, vecs)
        return index
    return FaissIndex.build(dim, ids, vecs, kind, **params)
