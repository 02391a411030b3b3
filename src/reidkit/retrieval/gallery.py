"""``Gallery``: a folder holding a vector index plus SQLite metadata, safe against crashes.

SQLite (WAL mode, full sync) is the source of truth: every item's metadata *and* its vector
(:mod:`.store`). The index file is a cache of it, written atomically, that records which data it
reflects (:mod:`.index_cache`): opening a gallery checks that record, indexes items added since,
and rebuilds an index that is missing, corrupt, of another dimension, or older than a removal.
So a process killed in the middle of ``add`` loses at most the batch it was writing (one
transaction), and never leaves half rows. Searches are planned by :mod:`.search_plan`.

Folder layout: ``gallery.sqlite`` (+ its WAL files) and ``index.bin`` (faiss index or Milvus
pointer). Scores are cosine similarities of L2-normalised features.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from . import engines
from .index import VectorIndex
from .index_cache import INDEX_NAME, IndexCache
from .search_plan import SearchPlanner
from .store import (DB_NAME, FORMAT, META_FIELDS, Filters, GalleryError, GalleryStore, camera_name,
                    check_new_gallery_folder)
from .vectors import as_ids, as_vectors

__all__ = ["DB_NAME", "INDEX_NAME", "META_FIELDS", "Filters", "Gallery", "GalleryError", "Hit", "IdentityHit",
           "camera_name", "check_new_gallery_folder"]


@dataclass
class Hit:
    """One search result: the item's id, its cosine similarity to the query, and its metadata."""

    id: int
    score: float
    camera: Optional[str] = None
    frame: Optional[int] = None
    timestamp: Optional[float] = None
    source: Optional[str] = None
    track_id: Optional[int] = None
    person_id: Optional[int] = None
    end_timestamp: Optional[float] = None
    identity_id: Optional[int] = None
    added_at: Optional[float] = None
    rerank_distance: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Gallery:
    """Items (vector + metadata) of one model, searchable by vector. Use :meth:`create` or :meth:`open`.

    The one facade over a :class:`~.store.GalleryStore` (``store``), its
    :class:`~.index_cache.IndexCache` and a :class:`~.search_plan.SearchPlanner`."""

    def __init__(self, folder: Path, store: GalleryStore):
        self.folder, self.store = folder, store
        self.settings = store.settings
        self.dim = store.dim
        self.model = store.settings["model"]
        self.cache = IndexCache(store, folder / INDEX_NAME)
        self.planner = SearchPlanner(store, self.cache)

    @property
    def index(self) -> Optional[VectorIndex]:
        return self.cache.index

    @property
    def index_path(self) -> Path:
        return self.cache.path

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, model: str, dim: int, *, engine: str = "faiss", index_kind: str = "auto",
               milvus_uri: Optional[str] = None, model_spec: Optional[dict] = None) -> "Gallery":
        """A new, empty gallery in ``folder`` (which must not hold one) for ``dim``-wide features of
        ``model``. Creation is all or nothing: if the index cannot be made (say, an unreachable
        Milvus server), no gallery is left behind, so the same command can simply be run again."""
        folder = Path(folder)
        if engine not in ("faiss", "milvus"):
            raise GalleryError(f"unknown engine {engine!r}: expected faiss or milvus")
        if engine == "faiss" and index_kind not in ("auto", *engines.KINDS):
            raise GalleryError(f"unknown index kind {index_kind!r}: expected auto, {', '.join(engines.KINDS)}")
        if int(dim) <= 0:
            raise GalleryError(f"feature dimension must be positive, got {dim}")
        check_new_gallery_folder(folder)
        made_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        settings = {"format": str(FORMAT), "model": model, "dim": str(int(dim)), "engine": engine,
                    "index_kind": index_kind, "milvus_uri": milvus_uri or str((folder / "milvus.db").resolve()),
                    "model_spec": json.dumps(model_spec or {}), "created_at": str(time.time()), "removals": "0",
                    "identities": "0"}
        GalleryStore.create(folder / DB_NAME, settings)  # a gallery appears whole or not at all
        try:
            return cls.open(folder)
        except BaseException:
            for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", INDEX_NAME):
                (folder / name).unlink(missing_ok=True)
            if made_folder and not any(folder.iterdir()):
                folder.rmdir()
            raise

    @classmethod
    def open(cls, folder: str | Path, threads: bool = False) -> "Gallery":
        """The gallery in ``folder``; its index is brought up to date with SQLite (see module doc).
        ``threads``: it may be used from several threads, one at a time (the caller locks)."""
        folder = Path(folder)
        path = folder / DB_NAME
        if not path.is_file():
            raise GalleryError(f"no gallery in {folder} ({DB_NAME} not found): create one with "
                               f"`reid gallery create {folder}`")
        store = GalleryStore.open(path, threads)
        gallery = cls(folder, store)
        try:
            gallery.cache.sync()
        except BaseException:
            store.close()
            raise
        return gallery

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Save the index if it changed, and close the database."""
        if self.store.db is None:
            return
        try:
            self.cache.flush()
        finally:
            self.store.close()

    def rebuild_index(self, kind: Optional[str] = None) -> VectorIndex:
        """Rebuild the index from SQLite (``kind`` overrides the gallery's setting, faiss only) and save it."""
        return self.cache.rebuild(kind)

    def flush(self) -> None:
        """Write the index file if items were added or removed since it was last written (see
        :meth:`IndexCache.flush`)."""
        self.cache.flush()

    # -- changing -----------------------------------------------------------------------------
    def add(self, vecs, metadata: Optional[Sequence[dict[str, Any]]] = None, model: Optional[str] = None) -> np.ndarray:
        """Store ``vecs`` (one transaction) with optional per-item metadata (keys: camera, frame,
        timestamp, source, track_id, person_id, end_timestamp, identity_id); returns their new ids. ``model`` names the model
        the vectors came from and must be the gallery's."""
        if model is not None and model != self.model:
            raise GalleryError(f"{self.folder} holds features of model {self.model} (dim {self.dim}); "
                               f"these come from {model}: create a gallery for that model")
        try:
            vecs = as_vectors(vecs, self.dim, "vectors to add")
        except ValueError as e:
            raise GalleryError(f"{self.folder}: {e} (this gallery's model {self.model} gives {self.dim})") from None
        metadata = list(metadata) if metadata is not None else [{}] * len(vecs)
        if len(metadata) != len(vecs):
            raise GalleryError(f"{len(metadata)} metadata records for {len(vecs)} vectors")
        for i, meta in enumerate(metadata):
            unknown = set(meta) - set(META_FIELDS)
            if unknown:
                raise GalleryError(f"metadata record {i}: unknown field(s) {', '.join(sorted(unknown))}; "
                                   f"expected {', '.join(META_FIELDS)}")
        if not len(vecs):
            return np.empty(0, np.int64)
        self.cache.sync()  # another process may have written since we opened
        ids = self.store.insert(vecs, metadata)
        self.cache.added(ids, vecs)
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        """Delete items by id (one transaction); returns how many existed."""
        ids = np.unique(as_ids(np.atleast_1d(ids if isinstance(ids, np.ndarray) else list(ids)),
                               what="ids to remove", distinct=False))
        self.cache.sync()
        removed = self.store.delete(ids)
        if removed:
            self.cache.removed(ids, removed)
        return removed

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        self.cache.sync()
        return self.cache.state["count"]

    def info(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "model": self.model, "dim": self.dim, "items": self.store.state()["count"],
                **self.store.summary(), "created_at": float(self.settings["created_at"]),
                "index": self.index.describe(), "model_spec": json.loads(self.settings.get("model_spec") or "{}")}

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``ids``, in that order."""
        return self.store.vectors_of(ids)

    def sources_present(self, sources: Sequence[str]) -> set[str]:
        """Which of ``sources`` (item ``source`` values, e.g. image paths) the gallery holds."""
        return self.store.sources_present(sources)

    def metadata(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self.store.metadata(ids)

    def search(self, queries, k: int = 10, filters: Optional[Filters] = None, rerank: bool = False,
               aqe: bool = False, candidates: int = 100) -> list[list[Hit]]:
        """The ``k`` nearest items to each query vector, best first, with their metadata.

        ``rerank`` re-orders the top ``candidates`` by k-reciprocal re-ranking; ``aqe`` first
        replaces the query by the similarity-weighted mean of itself and its nearest items.
        """
        if k < 1:
            raise GalleryError(f"top-k must be at least 1, got {k}")
        try:
            queries = as_vectors(queries, self.dim, "query vectors")
        except ValueError as e:
            raise GalleryError(f"{e} (this gallery's model {self.model} gives {self.dim})") from None
        if not len(queries):
            raise GalleryError("no query vectors given")
        if not len(self):
            raise GalleryError(f"gallery {self.folder} is empty: add images first (`reid gallery add`)")
        allowed = self.store.allowed(filters)
        if aqe:
            queries = self.planner.expand(queries, allowed)
        depth = max(k, candidates) if rerank else k
        scores, ids = self.planner.nearest(queries, depth, allowed)
        distances = None
        if rerank:
            scores, ids, distances = self.planner.rerank(queries, scores, ids)
        meta = self.store.metadata(np.unique(ids[ids >= 0]))
        results = []
        for row in range(len(queries)):
            hits = []
            for col in range(min(k, ids.shape[1])):
                i = int(ids[row, col])
                if i < 0 or i not in meta:
                    continue
                extra = {"rerank_distance": float(distances[row, col])} if distances is not None else {}
                hits.append(Hit(id=i, score=float(scores[row, col]), **meta[i], **extra))
            results.append(hits)
        return results

    # -- cross-camera identities ----------------------------------------------------------------
    def identity(self, identity: int) -> list[Hit]:
        """Every item of one cross-camera identity (``reid track --gallery``, ``reid mtmc
        --gallery``), in time order; empty when no item has it."""
        return [Hit(id=i, score=1.0, **meta) for i, meta in self.store.identity_items(identity)]

    def set_identities(self, assignments: dict[int, Optional[int]], reset: bool = False) -> None:
        """Give items (by id) an identity, in one transaction; ``reset`` clears all others first."""
        self.store.set_identities(assignments, reset)

    def search_identities(self, queries, k: int = 10, filters: Optional[Filters] = None,
                          candidates: int = 200) -> list[list["IdentityHit"]]:
        """The ``k`` identities nearest to each query vector: the ``candidates`` nearest items
        grouped by identity (an item without one stands for itself), each identity scored by its
        best item, best first."""
        out = []
        for hits in self.search(queries, max(k, candidates), filters):
            groups: dict[tuple[str, int], list[Hit]] = {}
            for hit in hits:
                key = ("identity", hit.identity_id) if hit.identity_id is not None else ("item", hit.id)
                groups.setdefault(key, []).append(hit)
            ranked = sorted(groups.values(), key=lambda g: -g[0].score)[:k]
            out.append([IdentityHit(identity_id=g[0].identity_id, score=g[0].score, best=g[0], hits=g)
                        for g in ranked])
        return out


@dataclass
class IdentityHit:
    """One identity found by :meth:`Gallery.search_identities`: its best-scoring item and every
    item of it among the candidates (``identity_id`` None: an item with no identity)."""

    identity_id: Optional[int]
    score: float
    best: Hit
    hits: list[Hit]

    def to_dict(self) -> dict[str, Any]:
        starts = [h.timestamp for h in self.hits if h.timestamp is not None]
        ends = [h.end_timestamp if h.end_timestamp is not None else h.timestamp for h in self.hits
                if h.timestamp is not None]
        return {"identity_id": self.identity_id, "score": self.score,
                "cameras": sorted({h.camera for h in self.hits if h.camera is not None}),
                "first": min(starts) if starts else None, "last": max(ends) if ends else None,
                "items": len(self.hits), "best": self.best.to_dict()}
