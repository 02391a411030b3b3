"""``Gallery``: a folder holding a vector index plus SQLite metadata, safe against crashes.

SQLite (WAL mode, full sync) is the source of truth: every item's metadata *and* its vector.
The index file is a cache of it, written atomically, that records which data it reflects (the
highest id and the number of removals done so far). Opening a gallery checks that record:
items added since are indexed on the spot, and an index that is missing, corrupt, of another
dimension, or older than a removal is rebuilt from SQLite. So a process killed in the middle of
``add`` loses at most the batch it was writing (one transaction), and never leaves half rows.

Folder layout: ``gallery.sqlite`` (+ its WAL files) and ``index.bin`` (faiss index or Milvus
pointer). Scores are cosine similarities of L2-normalised features.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from . import engines
from .engines import KINDS, open_index
from .faiss_index import training_rows
from .index import IndexFileError, VectorIndex, empty_result
from .vectors import as_ids, as_vectors

logger = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite"
INDEX_NAME = "index.bin"
#: 2: cameras are names (TEXT), items are indexed by source file; format-1 galleries are upgraded on opening.
FORMAT = 2
META_FIELDS = ("camera", "frame", "timestamp", "source", "track_id", "person_id")
#: Filtered searches allowing at most this many items are answered exactly from SQLite's vectors.
EXACT_FILTER_LIMIT = 50_000
SQL_VARS = 30_000
REFINE = 10  # IVF-PQ candidates per result, re-scored exactly with the stored vectors

ITEMS_TABLE = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT, frame INTEGER, timestamp REAL, source TEXT, track_id INTEGER, person_id INTEGER,
    added_at REAL NOT NULL,
    vector BLOB NOT NULL
);
"""
ITEMS_INDEXES = """
CREATE INDEX items_camera ON items(camera);
CREATE INDEX items_timestamp ON items(timestamp);
CREATE INDEX items_source ON items(source);
"""
SCHEMA = ("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
          + ITEMS_TABLE.format(name="items") + ITEMS_INDEXES)


class GalleryError(Exception):
    """A gallery that cannot be used as asked: missing, corrupt, or fed the wrong vectors."""


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
    added_at: Optional[float] = None
    rerank_distance: Optional[float] = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Filters:
    """Search-time restrictions; all optional and combined with AND. Cameras are names (a number
    given is compared as its text: camera 2 is "2")."""

    cameras: Optional[Sequence[str]] = None
    exclude_camera: Optional[str] = None
    since: Optional[float] = None
    until: Optional[float] = None

    def sql(self) -> tuple[str, list[Any]]:
        terms, args = [], []
        if self.cameras is not None:
            terms.append(f"camera IN ({','.join('?' * len(self.cameras))})")
            args += [camera_name(c) for c in self.cameras]
        if self.exclude_camera is not None:
            terms.append("(camera IS NULL OR camera != ?)")
            args.append(camera_name(self.exclude_camera))
        if self.since is not None:
            terms.append("timestamp >= ?")
            args.append(float(self.since))
        if self.until is not None:
            terms.append("timestamp <= ?")
            args.append(float(self.until))
        return " AND ".join(terms), args


def camera_name(camera: Any) -> Optional[str]:
    """A camera as the gallery stores it: its name, or None."""
    if camera is None:
        return None
    if isinstance(camera, float) and camera.is_integer():
        camera = int(camera)
    return str(camera)


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Format 1 -> 2 in one transaction: camera numbers become names ("3"), items get a source
    index. Ids, vectors and the id counter are kept, so the saved index stays valid."""
    try:
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT value FROM settings WHERE key='format'").fetchone()[0] == "1":  # not done meanwhile
            (seq,), = db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='items'").fetchall() \
                or [(0,)]
            db.execute(ITEMS_TABLE.format(name="items_v2"))
            cols = ", ".join(META_FIELDS)
            db.execute(f"INSERT INTO items_v2 (id, {cols}, added_at, vector) SELECT id, CAST(camera AS TEXT), "
                       f"{', '.join(META_FIELDS[1:])}, added_at, vector FROM items ORDER BY id")
            db.execute("DROP TABLE items")
            db.execute("ALTER TABLE items_v2 RENAME TO items")
            for statement in ITEMS_INDEXES.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name='items'", [seq])
            db.execute("UPDATE settings SET value = ? WHERE key='format'", [str(FORMAT)])
        db.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
        raise GalleryError(f"{path}: cannot upgrade this format-1 gallery to format {FORMAT} ({e})") from None
    logger.info("upgraded %s to gallery format %d (cameras are names)", path, FORMAT)


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None)  # explicit transactions
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def check_new_gallery_folder(folder: Path) -> None:
    """A GalleryError when ``folder`` cannot take a new gallery: it holds one, or is a file."""
    if (folder / DB_NAME).exists():
        raise GalleryError(f"{folder} already holds a gallery ({DB_NAME}); open it, or pick another folder")
    if folder.exists() and not folder.is_dir():
        raise GalleryError(f"{folder} is a file, not a folder for a gallery")


class Gallery:
    """Items (vector + metadata) of one model, searchable by vector. Use :meth:`create` or :meth:`open`."""

    def __init__(self, folder: Path, db: sqlite3.Connection, settings: dict[str, str]):
        self.folder, self.db, self.settings = folder, db, settings
        self.dim = int(settings["dim"])
        self.model = settings["model"]
        self.index: Optional[VectorIndex] = None
        self._dirty = False
        self._state: dict[str, int] = {}  # what SQLite held at the last sync or own write
        self._seen_version: Optional[int] = None  # PRAGMA data_version then: changes on others' commits

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
        if engine == "faiss" and index_kind not in ("auto", *KINDS):
            raise GalleryError(f"unknown index kind {index_kind!r}: expected auto, {', '.join(KINDS)}")
        if int(dim) <= 0:
            raise GalleryError(f"feature dimension must be positive, got {dim}")
        check_new_gallery_folder(folder)
        made_folder = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        settings = {"format": str(FORMAT), "model": model, "dim": str(int(dim)), "engine": engine,
                    "index_kind": index_kind, "milvus_uri": milvus_uri or str((folder / "milvus.db").resolve()),
                    "model_spec": json.dumps(model_spec or {}), "created_at": str(time.time()), "removals": "0"}
        tmp = folder / f".{DB_NAME}.creating"
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            # Rows are mostly vector bytes (2-8 KB): 16 KB pages write them ~1.6x faster than 4 KB.
            db.execute("PRAGMA page_size=16384")
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO settings VALUES (?, ?)", settings.items())
        finally:
            db.close()
        tmp.replace(folder / DB_NAME)  # a gallery appears whole or not at all
        try:
            return cls.open(folder)
        except BaseException:
            for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", INDEX_NAME):
                (folder / name).unlink(missing_ok=True)
            if made_folder and not any(folder.iterdir()):
                folder.rmdir()
            raise

    @classmethod
    def open(cls, folder: str | Path) -> "Gallery":
        """The gallery in ``folder``; its index is brought up to date with SQLite (see module doc)."""
        folder = Path(folder)
        path = folder / DB_NAME
        if not path.is_file():
            raise GalleryError(f"no gallery in {folder} ({DB_NAME} not found): create one with "
                               f"`reid gallery create {folder}`")
        try:
            db = _connect(path)
            settings = dict(db.execute("SELECT key, value FROM settings"))
            db.execute("SELECT count(*) FROM items").fetchone()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"{path} is not a readable gallery database ({e}); restore it from a backup "
                               "or create a new gallery") from None
        missing = {"format", "model", "dim", "engine"} - set(settings)
        if missing:
            raise GalleryError(f"{path}: settings lack {', '.join(sorted(missing))} (not a reidkit gallery?)")
        if int(settings["format"]) > FORMAT:
            db.close()
            raise GalleryError(f"{path} has gallery format {settings['format']}; this reidkit reads up to {FORMAT}")
        if int(settings["format"]) < FORMAT:
            _upgrade(db, path)
            settings["format"] = str(FORMAT)
        gallery = cls(folder, db, settings)
        try:
            gallery._sync_index()
        except BaseException:
            db.close()
            gallery.db = None
            raise
        return gallery

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Save the index if it changed, and close the database."""
        if self.db is None:
            return
        try:
            self.flush()
        finally:
            self.db.close()
            self.db = None

    # -- SQLite helpers -----------------------------------------------------------------------
    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"{self.folder / DB_NAME}: {e}") from None

    def _data_state(self) -> dict[str, int]:
        (max_id, count), = self._query("SELECT coalesce(max(id), 0), count(*) FROM items")
        removals = int(self._query("SELECT value FROM settings WHERE key='removals'")[0][0])
        return {"max_id": int(max_id), "count": int(count), "removals": removals}

    def _vectors(self, where: str = "", args: Sequence[Any] = (), chunk: int = 50_000
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the items matching ``where``, in id order, ``chunk`` at a time."""
        last = 0
        cond = f" AND {where}" if where else ""
        while True:
            rows = self._query(f"SELECT id, vector FROM items WHERE id > ?{cond} ORDER BY id LIMIT ?",
                               [last, *args, chunk])
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), self.dim)
            yield ids, vecs
            last = int(ids[-1])

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of ``ids``, in that order."""
        ids = np.asarray(ids, np.int64)
        found: dict[int, bytes] = {}
        for start in range(0, len(ids), SQL_VARS):
            part = ids[start:start + SQL_VARS].tolist()
            found.update(self._query(f"SELECT id, vector FROM items WHERE id IN ({','.join('?' * len(part))})", part))
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise GalleryError(f"no item with id {missing[0]} in {self.folder}")
        return np.frombuffer(b"".join(found[int(i)] for i in ids), np.float32).reshape(len(ids), self.dim)

    # -- the index ----------------------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    def _new_index(self, n: int, kind: Optional[str] = None) -> VectorIndex:
        if self.settings["engine"] == "milvus":
            index = engines.INDEX_ENGINES.get("milvus")(self.dim, self.settings["milvus_uri"])
            index.clear()
            return index
        kind = kind or self.settings.get("index_kind", "auto")
        return engines.new_index(self.dim, engines.choose_kind(n) if kind == "auto" else kind)

    def rebuild_index(self, kind: Optional[str] = None) -> VectorIndex:
        """Rebuild the index from SQLite (``kind`` overrides the gallery's setting, faiss only) and save it."""
        state = self._state = self._data_state()
        if kind is not None:
            if kind not in ("auto", *KINDS):
                raise GalleryError(f"unknown index kind {kind!r}: expected auto, {', '.join(KINDS)}")
            self._query("INSERT OR REPLACE INTO settings VALUES ('index_kind', ?)", [kind])
            self.settings["index_kind"] = kind
        index = self._new_index(state["count"])
        if index.needs_training:
            try:
                index.train(self._sample(100_000))
            except ValueError as e:  # too few items to train on yet
                if kind is not None:
                    raise GalleryError(f"{self.folder}: {e}") from None
                logger.warning("%s; searching exactly (flat) until then", e)
                index = engines.new_index(self.dim, "flat")
        for ids, vecs in self._vectors():
            index.add(ids, vecs)
        self.index = index
        self._save_index(state)
        logger.info("rebuilt the %s index of %s: %d items", index.engine, self.folder, len(index))
        return index

    def _sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to ``n`` stored vectors drawn without replacement by a seeded generator, so the same
        items always train the same index (SQLite's ``random()`` cannot be seeded)."""
        ids = np.array([r[0] for r in self._query("SELECT id FROM items ORDER BY id")], np.int64)
        ids = ids[training_rows(len(ids), n, seed)]
        return self.vectors_of(ids) if len(ids) else np.zeros((0, self.dim), np.float32)

    def _save_index(self, state: Optional[dict[str, int]] = None) -> None:
        self.index.state = dict(state or self._state)
        self.index.save(self.index_path)
        self._dirty = False

    def _sync_index(self) -> None:
        """Load the index and bring it up to date with SQLite, rebuilding it when it cannot be."""
        version = self._query("PRAGMA data_version")[0][0]
        if self.index is not None and version == self._seen_version:
            return  # nobody else committed since: our index and state are current
        self._seen_version = version
        state = self._state = self._data_state()
        if self.index is None:
            try:
                index = open_index(self.index_path)
                if index.dim != self.dim:
                    raise IndexFileError(f"{self.index_path}: dimension {index.dim}, gallery {self.dim}")
                self.index = index
            except IndexFileError as e:
                if self.index_path.exists() or state["count"]:
                    logger.warning("%s: rebuilding the index from %s", e, DB_NAME)
                self.rebuild_index()
                return
        have = self.index.state or {}
        if have.get("removals") != state["removals"] or have.get("max_id", 0) > state["max_id"]:
            self.rebuild_index()
            return
        if have.get("max_id", 0) < state["max_id"]:  # items committed after the index was saved
            try:
                for ids, vecs in self._vectors("id > ?", [have["max_id"]]):
                    self.index.add(ids, vecs)
            except ValueError as e:  # e.g. a Milvus collection that got some of them already
                logger.warning("%s: catching up failed (%s): rebuilding", self.index_path, e)
                self.rebuild_index()
                return
            self.index.state = dict(state)
            self._dirty = True
        if len(self.index) != state["count"]:
            logger.warning("%s holds %d items, SQLite %d: rebuilding", self.index_path, len(self.index), state["count"])
            self.rebuild_index()

    def flush(self) -> None:
        """Write the index file if items were added or removed since it was last written; with
        index kind ``auto``, rebuild it instead when the gallery's size now calls for another kind."""
        if not self._dirty or self.index is None:
            return
        if self._wanted_kind() not in (None, self.index.kind):
            self.rebuild_index()
        else:
            self._save_index()

    def _wanted_kind(self) -> Optional[str]:
        if self.settings["engine"] == "milvus" or self.settings.get("index_kind", "auto") != "auto":
            return None
        return engines.choose_kind(self._state["count"])

    # -- changing -----------------------------------------------------------------------------
    def add(self, vecs, metadata: Optional[Sequence[dict[str, Any]]] = None, model: Optional[str] = None) -> np.ndarray:
        """Store ``vecs`` (one transaction) with optional per-item metadata (keys: camera, frame,
        timestamp, source, track_id, person_id); returns their new ids. ``model`` names the model
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
        now = time.time()
        rows = [(camera_name(m.get("camera")), *(m.get(f) for f in META_FIELDS[1:]), now, v.tobytes())
                for m, v in zip(metadata, vecs)]
        self._sync_index()  # another process may have written since we opened
        try:
            self.db.execute("BEGIN IMMEDIATE")
            (first,), = self.db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='items'"
                                        ).fetchall() or [(0,)]
            self.db.executemany(f"INSERT INTO items ({', '.join(META_FIELDS)}, added_at, vector) "
                                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            (last,), = self.db.execute("SELECT last_insert_rowid()").fetchall()
            if last != first + len(rows):  # AUTOINCREMENT under a write lock numbers rows consecutively
                raise AssertionError(f"ids {first + 1}..{last} for {len(rows)} rows")
            ids = np.arange(first + 1, last + 1, dtype=np.int64)
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise GalleryError(f"{self.folder / DB_NAME}: {e}") from None
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.index.add(ids, vecs)
        self._state = {**self._state, "max_id": int(ids[-1]), "count": self._state["count"] + len(ids)}
        self.index.state = dict(self._state)
        self._dirty = True
        return ids

    def remove(self, ids: Iterable[int]) -> int:
        """Delete items by id (one transaction); returns how many existed."""
        ids = np.unique(as_ids(np.atleast_1d(ids if isinstance(ids, np.ndarray) else list(ids)),
                               what="ids to remove", distinct=False))
        self._sync_index()
        removed = 0
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for start in range(0, len(ids), SQL_VARS):
                part = ids[start:start + SQL_VARS].tolist()
                removed += self.db.execute(f"DELETE FROM items WHERE id IN ({','.join('?' * len(part))})", part).rowcount
            if removed:
                self.db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key='removals'")
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        if removed:
            self.index.remove(ids)
            self._state = {**self._state, "count": self._state["count"] - removed,
                           "removals": self._state["removals"] + 1}
            self.index.state = dict(self._state)
            self._dirty = True
        return removed

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        self._sync_index()
        return self._state["count"]

    def info(self) -> dict[str, Any]:
        state = self._data_state()
        cams = self._query("SELECT camera, count(*) FROM items GROUP BY camera ORDER BY camera")
        span = self._query("SELECT min(timestamp), max(timestamp), min(added_at), max(added_at) FROM items")[0]
        return {"folder": str(self.folder), "model": self.model, "dim": self.dim, "items": state["count"],
                "cameras": {str(c): n for c, n in cams}, "timestamps": list(span[:2]), "added": list(span[2:]),
                "created_at": float(self.settings["created_at"]), "index": self.index.describe(),
                "model_spec": json.loads(self.settings.get("model_spec") or "{}")}

    def sources_present(self, sources: Sequence[str]) -> set[str]:
        """Which of ``sources`` (item ``source`` values, e.g. image paths) the gallery holds."""
        found: set[str] = set()
        sources = list(sources)
        for start in range(0, len(sources), SQL_VARS):
            part = sources[start:start + SQL_VARS]
            found.update(r[0] for r in self._query(
                f"SELECT DISTINCT source FROM items WHERE source IN ({','.join('?' * len(part))})", part))
        return found

    def metadata(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        cols = (*META_FIELDS, "added_at")
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), SQL_VARS):
            part = ids[start:start + SQL_VARS]
            for row in self._query(f"SELECT id, {', '.join(cols)} FROM items WHERE id IN ({','.join('?' * len(part))})",
                                   part):
                out[row[0]] = dict(zip(cols, row[1:]))
        return out

    def _allowed(self, filters: Optional[Filters]) -> Optional[np.ndarray]:
        where, args = filters.sql() if filters is not None else ("", [])
        if not where:
            return None
        return np.array([r[0] for r in self._query(f"SELECT id FROM items WHERE {where}", args)], np.int64)

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
        allowed = self._allowed(filters)
        if aqe:
            queries = self._expand(queries, allowed)
        depth = max(k, candidates) if rerank else k
        scores, ids = self._nearest(queries, depth, allowed)
        distances = None
        if rerank:
            scores, ids, distances = self._rerank(queries, scores, ids)
        meta = self.metadata(np.unique(ids[ids >= 0]))
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

    def _nearest(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            return self._exact(queries, k, allowed)
        if not self.index.approximate_scores:
            return self.index.search(queries, k, allowed)
        # Product codes only approximate the scores: take REFINE x k candidates by code, then
        # score them exactly with the stored vectors.
        _, candidates = self.index.search(queries, REFINE * k, allowed)
        scores, ids = empty_result(len(queries), k)
        unique = np.unique(candidates[candidates >= 0])
        stored = self.vectors_of(unique) if len(unique) else np.zeros((0, self.dim), np.float32)
        for row, found in enumerate(candidates):
            found = found[found >= 0]
            if not len(found):
                continue
            exact = stored[np.searchsorted(unique, found)] @ queries[row]  # one SQLite read for all rows
            order = np.argsort(-exact, kind="stable")[:k]
            scores[row, :len(order)], ids[row, :len(order)] = exact[order], found[order]
        return scores, ids

    def _exact(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over a small allowed set, from SQLite's vectors (no approximation)."""
        subset = engines.new_index(self.dim, "flat")
        if len(allowed):
            subset.add(allowed, self.vectors_of(allowed))
        return subset.search(queries, k)

    def _expand(self, queries: np.ndarray, allowed: Optional[np.ndarray], qe_k: int = 5) -> np.ndarray:
        from ..evaluation.distance import l2_normalize
        from ..evaluation.query_expansion import weighted_mean

        _, ids = self._nearest(queries, qe_k, allowed)
        out = np.empty_like(queries)
        for row, q in enumerate(queries):
            found = ids[row][ids[row] >= 0]
            neigh = self.vectors_of(found) if len(found) else np.zeros((0, self.dim), np.float32)
            group = np.concatenate([q[None], neigh])  # the query and its nearest items, as fast-reid's AQE (alpha 3)
            out[row] = weighted_mean(group[None], (group @ q)[None], alpha=3.0)[0]
        return l2_normalize(out)

    def _rerank(self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray):
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
            dist = k_reciprocal_rerank(q[None], self.vectors_of(cand), k1=k1, k2=k2)[0]
            order = np.argsort(dist, kind="stable")
            new_ids[row, :len(cand)] = cand[order]
            new_scores[row, :len(cand)] = scores[row][valid][order]
            distances[row, :len(cand)] = dist[order]
        return new_scores, new_ids, distances
