"""The gallery's store: one SQLite database (WAL, full sync) holding every item's metadata and
vector, the source of truth that the index is rebuilt from. Transactions, chunked queries
(SQLite takes at most ``SQL_VARS`` parameters a statement) and the format upgrade live here.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from .faiss_index import training_rows

logger = logging.getLogger(__name__)

DB_NAME = "gallery.sqlite"
#: 2: cameras are names (TEXT), items are indexed by source file. 3: items may carry an end time
#: and a cross-camera identity (``reid track --gallery``, ``reid mtmc``). Older galleries are
#: upgraded on opening.
FORMAT = 3
#: The columns format 2 had, which format 1 -> 2 copies.
V2_FIELDS = ("camera", "frame", "timestamp", "source", "track_id", "person_id")
META_FIELDS = (*V2_FIELDS, "end_timestamp", "identity_id")
SQL_VARS = 30_000

ITEMS_TABLE = """
CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT, frame INTEGER, timestamp REAL, source TEXT, track_id INTEGER, person_id INTEGER,
    added_at REAL NOT NULL, end_timestamp REAL, identity_id INTEGER,
    vector BLOB NOT NULL
);
"""
ITEMS_INDEXES = """
CREATE INDEX items_camera ON items(camera);
CREATE INDEX items_timestamp ON items(timestamp);
CREATE INDEX items_source ON items(source);
CREATE INDEX items_identity ON items(identity_id);
"""
SCHEMA = ("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
          + ITEMS_TABLE.format(name="items") + ITEMS_INDEXES)


class GalleryError(Exception):
    """A gallery that cannot be used as asked: missing, corrupt, or fed the wrong vectors."""


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
    """Format 1 or 2 -> 3 in one transaction. 1 -> 2: camera numbers become names ("3"), items
    get a source index. 2 -> 3: the end time and identity columns, and the identity counter. Ids,
    vectors and the id counter are kept, so the saved index stays valid."""
    version = "?"
    try:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("SELECT value FROM settings WHERE key='format'").fetchone()[0]  # as now, not as opened
        if version == "1":
            (seq,), = db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='items'").fetchall() \
                or [(0,)]
            db.execute(ITEMS_TABLE.format(name="items_v2"))
            cols = ", ".join(V2_FIELDS)
            db.execute(f"INSERT INTO items_v2 (id, {cols}, added_at, vector) SELECT id, CAST(camera AS TEXT), "
                       f"{', '.join(V2_FIELDS[1:])}, added_at, vector FROM items ORDER BY id")
            db.execute("DROP TABLE items")
            db.execute("ALTER TABLE items_v2 RENAME TO items")
            for statement in ITEMS_INDEXES.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name='items'", [seq])
        elif version == "2":
            db.execute("ALTER TABLE items ADD COLUMN end_timestamp REAL")
            db.execute("ALTER TABLE items ADD COLUMN identity_id INTEGER")
            db.execute("CREATE INDEX items_identity ON items(identity_id)")
        if version in ("1", "2"):
            db.execute("INSERT OR IGNORE INTO settings VALUES ('identities', '0')")
            db.execute("UPDATE settings SET value = ? WHERE key='format'", [str(FORMAT)])
        db.execute("COMMIT")
    except sqlite3.DatabaseError as e:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
        raise GalleryError(f"{path}: cannot upgrade this format-{version} gallery to format {FORMAT} ({e})") from None
    logger.info("upgraded %s to gallery format %d", path, FORMAT)


def _connect(path: Path, threads: bool = False) -> sqlite3.Connection:
    """``threads``: the connection may be used from other threads (the caller serialises them)."""
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=not threads)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


def check_new_gallery_folder(folder: Path) -> None:
    """A GalleryError when ``folder`` cannot take a new gallery: it holds one, or is a file."""
    if (folder / DB_NAME).exists():
        raise GalleryError(f"{folder} already holds a gallery ({DB_NAME}); open it, or pick another folder")
    if folder.exists() and not folder.is_dir():
        raise GalleryError(f"{folder} is a file, not a folder for a gallery")


class GalleryStore:
    """Items of one gallery in SQLite: ``settings`` (key/value) and ``items`` (metadata + vector)."""

    def __init__(self, path: Path, db: sqlite3.Connection, settings: dict[str, str]):
        self.path, self.db, self.settings = path, db, settings
        self.dim = int(settings["dim"])

    @classmethod
    def create(cls, path: Path, settings: dict[str, str]) -> None:
        """Write a new, empty database at ``path``: it appears whole (renamed into place) or not at all."""
        tmp = path.with_name(f".{path.name}.creating")
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            # Rows are mostly vector bytes (2-8 KB): 16 KB pages write them ~1.6x faster than 4 KB.
            db.execute("PRAGMA page_size=16384")
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO settings VALUES (?, ?)", settings.items())
        finally:
            db.close()
        tmp.replace(path)

    @classmethod
    def open(cls, path: Path, threads: bool = False) -> "GalleryStore":
        """The database at ``path``, checked and upgraded to this reidkit's format (``threads``:
        usable from several threads, one at a time)."""
        try:
            db = _connect(path, threads)
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
        return cls(path, db, settings)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    # -- reading ------------------------------------------------------------------------------
    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"{self.path}: {e}") from None

    def data_version(self) -> int:
        """Changes whenever another connection commits (``PRAGMA data_version``)."""
        return self.query("PRAGMA data_version")[0][0]

    def state(self) -> dict[str, int]:
        """What the store holds, as the index records it: highest id, count, removals so far."""
        (max_id, count), = self.query("SELECT coalesce(max(id), 0), count(*) FROM items")
        removals = int(self.query("SELECT value FROM settings WHERE key='removals'")[0][0])
        return {"max_id": int(max_id), "count": int(count), "removals": removals}

    def vectors(self, where: str = "", args: Sequence[Any] = (), chunk: int = 50_000
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, vectors) of the items matching ``where``, in id order, ``chunk`` at a time."""
        last = 0
        cond = f" AND {where}" if where else ""
        while True:
            rows = self.query(f"SELECT id, vector FROM items WHERE id > ?{cond} ORDER BY id LIMIT ?",
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
            found.update(self.query(f"SELECT id, vector FROM items WHERE id IN ({','.join('?' * len(part))})", part))
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise GalleryError(f"no item with id {missing[0]} in {self.path.parent}")
        return np.frombuffer(b"".join(found[int(i)] for i in ids), np.float32).reshape(len(ids), self.dim)

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """Up to ``n`` stored vectors drawn without replacement by a seeded generator, so the same
        items always train the same index (SQLite's ``random()`` cannot be seeded)."""
        ids = np.array([r[0] for r in self.query("SELECT id FROM items ORDER BY id")], np.int64)
        ids = ids[training_rows(len(ids), n, seed)]
        return self.vectors_of(ids) if len(ids) else np.zeros((0, self.dim), np.float32)

    def metadata(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        cols = (*META_FIELDS, "added_at")
        ids = [int(i) for i in ids]
        for start in range(0, len(ids), SQL_VARS):
            part = ids[start:start + SQL_VARS]
            for row in self.query(f"SELECT id, {', '.join(cols)} FROM items WHERE id IN ({','.join('?' * len(part))})",
                                  part):
                out[row[0]] = dict(zip(cols, row[1:]))
        return out

    def sources_present(self, sources: Sequence[str]) -> set[str]:
        """Which of ``sources`` (item ``source`` values, e.g. image paths) the store holds."""
        found: set[str] = set()
        sources = list(sources)
        for start in range(0, len(sources), SQL_VARS):
            part = sources[start:start + SQL_VARS]
            found.update(r[0] for r in self.query(
                f"SELECT DISTINCT source FROM items WHERE source IN ({','.join('?' * len(part))})", part))
        return found

    def allowed(self, filters: Optional[Filters]) -> Optional[np.ndarray]:
        """Ids of the items ``filters`` allow (None: no filter, everything)."""
        where, args = filters.sql() if filters is not None else ("", [])
        if not where:
            return None
        return np.array([r[0] for r in self.query(f"SELECT id FROM items WHERE {where}", args)], np.int64)

    def summary(self) -> dict[str, Any]:
        """Items per camera and the time spans, for ``gallery info``."""
        cams = self.query("SELECT camera, count(*) FROM items GROUP BY camera ORDER BY camera")
        span = self.query("SELECT min(timestamp), max(timestamp), min(added_at), max(added_at), "
                          "count(DISTINCT identity_id) FROM items")[0]
        return {"cameras": {str(c): n for c, n in cams}, "timestamps": list(span[:2]), "added": list(span[2:4]),
                "identities": int(span[4])}

    def identity_items(self, identity: int) -> list[tuple[int, dict[str, Any]]]:
        """(id, metadata) of every item of one cross-camera identity, in time order."""
        ids = [r[0] for r in self.query("SELECT id FROM items WHERE identity_id = ? ORDER BY timestamp, id",
                                        [int(identity)])]
        meta = self.metadata(ids)
        return [(i, meta[i]) for i in ids]

    def track_items(self) -> dict[tuple[str, int], list[int]]:
        """(camera, track id) -> ids of the items of that track (items with both)."""
        out: dict[tuple[str, int], list[int]] = {}
        for i, cam, track in self.query("SELECT id, camera, track_id FROM items WHERE camera IS NOT NULL "
                                        "AND track_id IS NOT NULL ORDER BY id"):
            out.setdefault((str(cam), int(track)), []).append(int(i))
        return out

    def identities_seen(self, camera: Optional[str], start: float, end: float) -> set[int]:
        """Identities with an item of ``camera`` whose time span overlaps ``start``..``end``: a
        person cannot be in one camera twice at once, so a new tracklet of that span is not them."""
        if camera is None:
            return set()
        rows = self.query("SELECT DISTINCT identity_id FROM items WHERE identity_id IS NOT NULL AND camera = ? "
                          "AND timestamp <= ? AND coalesce(end_timestamp, timestamp) >= ?",
                          [camera_name(camera), float(end), float(start)])
        return {int(r[0]) for r in rows}

    # -- writing ------------------------------------------------------------------------------
    def new_identity(self) -> int:
        """A fresh identity number, unique across processes (the counter moves in one statement)."""
        try:
            (value,), = self.db.execute("UPDATE settings SET value = CAST(value AS INTEGER) + 1 "
                                        "WHERE key = 'identities' RETURNING value").fetchall()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"{self.path}: {e}") from None
        return int(value)

    def set_identities(self, assignments: dict[int, Optional[int]], reset: bool = False) -> None:
        """Item id -> identity (None: none), in one transaction; ``reset`` first clears every
        item's identity (an offline association replaces the online one). The counter moves past
        the highest identity given."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if reset:
                self.db.execute("UPDATE items SET identity_id = NULL")
            self.db.executemany("UPDATE items SET identity_id = ? WHERE id = ?",
                                [(None if g is None else int(g), int(i)) for i, g in assignments.items()])
            top = max((int(g) for g in assignments.values() if g is not None), default=0)
            self.db.execute("UPDATE settings SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'identities'",
                            [top])
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    def set_setting(self, key: str, value: str) -> None:
        self.query("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])
        self.settings[key] = value

    def insert(self, vecs: np.ndarray, metadata: Sequence[dict[str, Any]]) -> np.ndarray:
        """Store the rows in one transaction; their new, consecutive ids."""
        now = time.time()
        rows = [(camera_name(m.get("camera")), *(m.get(f) for f in META_FIELDS[1:]), now, v.tobytes())
                for m, v in zip(metadata, vecs)]
        marks = ", ".join("?" * (len(META_FIELDS) + 2))
        try:
            self.db.execute("BEGIN IMMEDIATE")
            (first,), = self.db.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='items'"
                                        ).fetchall() or [(0,)]
            self.db.executemany(f"INSERT INTO items ({', '.join(META_FIELDS)}, added_at, vector) "
                                f"VALUES ({marks})", rows)
            (last,), = self.db.execute("SELECT last_insert_rowid()").fetchall()
            if last != first + len(rows):  # AUTOINCREMENT under a write lock numbers rows consecutively
                raise AssertionError(f"ids {first + 1}..{last} for {len(rows)} rows")
            ids = np.arange(first + 1, last + 1, dtype=np.int64)
            self.db.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise GalleryError(f"{self.path}: {e}") from None
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return ids

    def delete(self, ids: np.ndarray) -> int:
        """Delete items by id in one transaction (counting a removal when any existed); how many did."""
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
        return removed
