"""The gallery's index: a file that caches the store, and records which data it reflects (the
highest id, the count and the number of removals so far, in the index's ``state``).

``sync`` brings it up to date with the store: items committed since it was saved are indexed on
the spot; an index that is missing, corrupt, of another dimension, or older than a removal is
rebuilt from the store. ``flush`` writes it (atomically) when it changed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from . import engines
from .index import IndexFileError, VectorIndex
from .store import DB_NAME, GalleryError, GalleryStore

logger = logging.getLogger(__name__)
INDEX_NAME = "index.bin"
TRAINING_SAMPLE = 100_000  # vectors an index that needs training learns from


class IndexCache:
    """The index of one store; the store's ``engine``/``index_kind``/``milvus_uri`` settings say which."""

    def __init__(self, store: GalleryStore, path: Path):
        self.store, self.path = store, path
        self.index: Optional[VectorIndex] = None
        self.state: dict[str, int] = {}  # what the store held at the last sync or own write
        self._dirty = False
        self._seen_version: Optional[int] = None  # the store's data_version then: changes on others' commits

    @property
    def settings(self) -> dict[str, str]:
        return self.store.settings

    def _new_index(self, n: int) -> VectorIndex:
        if self.settings["engine"] == "milvus":
            index = engines.INDEX_ENGINES.get("milvus")(self.store.dim, self.settings["milvus_uri"])
            index.clear()
            return index
        kind = self.settings.get("index_kind", "auto")
        return engines.new_index(self.store.dim, engines.choose_kind(n) if kind == "auto" else kind)

    def rebuild(self, kind: Optional[str] = None) -> VectorIndex:
        """Rebuild the index from the store (``kind`` overrides the gallery's setting, faiss only) and save it."""
        state = self.state = self.store.state()
        if kind is not None:
            if kind not in ("auto", *engines.KINDS):
                raise GalleryError(f"unknown index kind {kind!r}: expected auto, {', '.join(engines.KINDS)}")
            self.store.set_setting("index_kind", kind)
        index = self._new_index(state["count"])
        if index.needs_training:
            try:
                index.train(self.store.sample(TRAINING_SAMPLE))
            except ValueError as e:  # too few items to train on yet
                if kind is not None:
                    raise GalleryError(f"{self.path.parent}: {e}") from None
                logger.warning("%s; searching exactly (flat) until then", e)
                index = engines.new_index(self.store.dim, "flat")
        for ids, vecs in self.store.vectors():
            index.add(ids, vecs)
        self.index = index
        self._save(state)
        logger.info("rebuilt the %s index of %s: %d items", index.engine, self.path.parent, len(index))
        return index

    def _save(self, state: Optional[dict[str, int]] = None) -> None:
        self.index.state = dict(state or self.state)
        self.index.save(self.path)
        self._dirty = False

    def sync(self) -> None:
        """Load the index and bring it up to date with the store, rebuilding it when it cannot be."""
        version = self.store.data_version()
        if self.index is not None and version == self._seen_version:
            return  # nobody else committed since: our index and state are current
        self._seen_version = version
        state = self.state = self.store.state()
        if self.index is None:
            try:
                index = engines.open_index(self.path)
                if index.dim != self.store.dim:
                    raise IndexFileError(f"{self.path}: dimension {index.dim}, gallery {self.store.dim}")
                self.index = index
            except IndexFileError as e:
                if self.path.exists() or state["count"]:
                    logger.warning("%s: rebuilding the index from %s", e, DB_NAME)
                self.rebuild()
                return
        have = self.index.state or {}
        if have.get("removals") != state["removals"] or have.get("max_id", 0) > state["max_id"]:
            self.rebuild()
            return
        if have.get("max_id", 0) < state["max_id"]:  # items committed after the index was saved
            try:
                for ids, vecs in self.store.vectors("id > ?", [have["max_id"]]):
                    self.index.add(ids, vecs)
            except ValueError as e:  # e.g. a Milvus collection that got some of them already
                logger.warning("%s: catching up failed (%s): rebuilding", self.path, e)
                self.rebuild()
                return
            self.index.state = dict(state)
            self._dirty = True
        if len(self.index) != state["count"]:
            logger.warning("%s holds %d items, SQLite %d: rebuilding", self.path, len(self.index), state["count"])
            self.rebuild()

    def added(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Items the store just committed: into the index, and into its state."""
        self.index.add(ids, vecs)
        self.state = {**self.state, "max_id": int(ids[-1]), "count": self.state["count"] + len(ids)}
        self.index.state = dict(self.state)
        self._dirty = True

    def removed(self, ids: np.ndarray, count: int) -> None:
        """``count`` of ``ids`` were just deleted from the store (one removal)."""
        self.index.remove(ids)
        self.state = {**self.state, "count": self.state["count"] - count, "removals": self.state["removals"] + 1}
        self.index.state = dict(self.state)
        self._dirty = True

    def flush(self) -> None:
        """Write the index file if items were added or removed since it was last written; with
        index kind ``auto``, rebuild it instead when the gallery's size now calls for another kind."""
        if not self._dirty or self.index is None:
            return
        if self._wanted_kind() not in (None, self.index.kind):
            self.rebuild()
        else:
            self._save()

    def _wanted_kind(self) -> Optional[str]:
        if self.settings["engine"] == "milvus" or self.settings.get("index_kind", "auto") != "auto":
            return None
        return engines.choose_kind(self.state["count"])
