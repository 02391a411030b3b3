"""``VectorIndex``: the interface of every vector store, the engines' registry and their file format.

Scores are inner products, which for the L2-normalised features of ``Embedder`` are cosine
similarities (higher is nearer). Ids are caller-chosen int64; a search pads missing hits with
id -1 and score -inf. ``save`` writes atomically; loading raises ``IndexFileError`` for a file
that is missing, truncated or corrupt, so a caller holding the data elsewhere can rebuild.
Engines register themselves in ``INDEX_ENGINES``; :mod:`.engines` opens and builds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

import numpy as np

from ..fileio import atomic_write
from ..registry import Registry

MAGIC = b"RKINDEX1"
END_MAGIC = b"RKINDEND"
TRAILER = 8 + 4 + len(END_MAGIC)  # payload length, CRC-32 of the payload, end magic
CHUNK = 1 << 22


class IndexFileError(Exception):
    """A saved index that cannot be used as it is: missing, truncated, corrupt or of another kind."""


INDEX_ENGINES: Registry = Registry(
    "index engine", "a VectorIndex subclass: `load(path)` opens its saved file, `create(dim, kind, **params)` "
    "makes an empty index of each kind it declares in `kinds`; `approximate_scores` and `needs_training` "
    "say what a caller must do", where="`engine` in the index file; `reid gallery create --engine/--index`")


class VectorIndex(ABC):
    """Nearest-neighbour search by inner product over ``dim``-wide float32 vectors with int64 ids."""

    engine: str = ""
    kind: str = ""
    dim: int

    #: What the owner of the index stored with it at the last ``save`` (e.g. which data it reflects).
    state: dict[str, Any]

    @abstractmethod
    def add(self, ids, vecs) -> None:
        """Add vectors under new ids (an id already present is an error)."""

    @abstractmethod
    def remove(self, ids) -> int:
        """Remove the given ids; returns how many were present."""

    @abstractmethod
    def search(self, vecs, k: int, allowed: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each (num_queries, k), best first; only ``allowed`` ids when given."""

    @abstractmethod
    def save(self, path: str | Path) -> Path:
        """Write the index (with ``state``) to ``path`` atomically."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of vectors searchable now."""

    @property
    def approximate_scores(self) -> bool:
        """True when search scores only approximate the inner products (compressed codes): a caller
        holding the vectors re-scores the candidates."""
        return False

    @property
    def needs_training(self) -> bool:
        """True while the index must see a sample of the data (``train``) before it can hold any."""
        return False

    def train(self, sample) -> None:
        """Learn what the index needs from a sample of the data; nothing for most engines."""

    @classmethod
    def load(cls, path: str | Path) -> "VectorIndex":
        """The index saved at ``path`` by this engine."""
        raise NotImplementedError(f"the {cls.engine} engine cannot load index files")

    def describe(self) -> dict[str, Any]:
        """Engine, kind and parameters, for ``gallery info``."""
        return {"engine": self.engine, "dim": self.dim, "size": len(self)}


def empty_result(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((n, k), -np.inf, np.float32), np.full((n, k), -1, np.int64)


def write_index_file(path: str | Path, header: dict[str, Any],
                     payload: Callable[[Callable[[bytes], None]], None]) -> Path:
    """Write an index file atomically: magic, header length, JSON ``header``, what ``payload(sink)``
    passes to ``sink``, then a trailer with the payload's length and CRC-32 and an end magic."""
    raw = json.dumps(header).encode()

    def write(f: BinaryIO) -> None:
        f.write(MAGIC + len(raw).to_bytes(8, "little") + raw)
        crc, size = 0, 0

        def sink(data: bytes) -> None:
            nonlocal crc, size
            f.write(data)
            crc, size = zlib.crc32(data, crc), size + len(data)

        payload(sink)
        f.write(size.to_bytes(8, "little") + crc.to_bytes(4, "little") + END_MAGIC)

    return atomic_write(path, write)


@contextlib.contextmanager
def open_index_file(path: Path) -> Iterator[tuple[dict[str, Any], BinaryIO]]:
    """(header, file positioned at the payload), once length and checksum proved it whole."""
    header = read_header(path)
    with open(path, "rb") as f:
        f.seek(len(MAGIC))
        start = len(MAGIC) + 8 + int.from_bytes(f.read(8), "little")
        total = os.fstat(f.fileno()).st_size
        if total < start + TRAILER:
            raise IndexFileError(f"{path}: truncated ({total} bytes)")
        f.seek(total - TRAILER)
        trailer = f.read(TRAILER)
        size = int.from_bytes(trailer[:8], "little")
        if trailer[12:] != END_MAGIC or start + size + TRAILER != total:
            raise IndexFileError(f"{path}: truncated or damaged (its trailer does not match its size)")
        f.seek(start)
        crc, left = 0, size
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                raise IndexFileError(f"{path}: truncated")
            crc, left = zlib.crc32(chunk, crc), left - len(chunk)
        if crc != int.from_bytes(trailer[8:12], "little"):
            raise IndexFileError(f"{path}: checksum mismatch (file corrupt)")
        f.seek(start)
        yield header, f


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header at the start of a saved index (every engine writes one)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise IndexFileError(f"{path}: not a reidkit index file")
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < 1 << 20:
                raise IndexFileError(f"{path}: header size {size} is invalid (file corrupt)")
            raw = f.read(size)
    except FileNotFoundError:
        raise IndexFileError(f"{path}: index file missing") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IndexFileError(f"{path}: header unreadable (file truncated or corrupt)") from None
    if not isinstance(header, dict) or "engine" not in header:
        raise IndexFileError(f"{path}: header names no engine (file corrupt)")
    return header
