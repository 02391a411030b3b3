"""Milvus engine: the same ``VectorIndex`` on a Milvus server, for galleries beyond one machine.

``uri`` is anything ``pymilvus.MilvusClient`` takes: ``http://host:19530`` for a cluster, or a
local ``something.db`` file, which runs the embedded milvus-lite (what the tests use). Vectors
live in one collection (``id`` INT64 primary key, ``vector`` FLOAT_VECTOR, inner-product
metric). ``save`` flushes and writes a small pointer file (uri, collection, caller state) in the
same checksummed format as the faiss engine, so ``open_index`` reconnects from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from .index import INDEX_ENGINES, IndexFileError, VectorIndex, empty_result, open_index_file, write_index_file
from .vectors import as_ids, as_vectors

INSERT_BATCH = 5000
#: Ids a membership query asks about at once.
FILTER_CHUNK = 65536


def _client(uri: str):
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ImportError("the milvus engine needs pymilvus (and milvus-lite for a local file): "
                          "pip install pymilvus milvus-lite") from None
    try:
        return MilvusClient(uri)
    except Exception as e:  # pymilvus raises its own exception types for unreachable servers
        raise ConnectionError(f"cannot connect to Milvus at {uri}: {e}") from None


@INDEX_ENGINES.register("milvus", kinds=(), remote=True)
class MilvusIndex(VectorIndex):
    """A Milvus collection; made by a gallery from its ``milvus_uri``, not by kind."""

    engine = "milvus"

    def __init__(self, dim: int, uri: str, collection: str = "reidkit_gallery", index_type: str = "AUTOINDEX",
                 create: bool = True):
        from pymilvus import DataType, MilvusClient

        self.dim, self.uri, self.collection, self.index_type = int(dim), str(uri), collection, index_type
        self.state: dict[str, Any] = {}
        self.client = _client(self.uri)
        if self.client.has_collection(collection):
            fields = self.client.describe_collection(collection)["fields"]
            have = next((f.get("params", {}).get("dim") for f in fields if f["name"] == "vector"), None)
            if have is None or int(have) != self.dim:
                raise ValueError(f"Milvus collection {collection!r} at {uri} holds vectors of dimension {have}, "
                                 f"not {self.dim}")
        elif create:
            schema = MilvusClient.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            params = self.client.prepare_index_params()
            params.add_index(field_name="vector", index_type=index_type, metric_type="IP")
            self.client.create_collection(collection, schema=schema, index_params=params)
        else:
            raise IndexFileError(f"Milvus collection {collection!r} is gone from {uri}")

    def clear(self) -> None:
        """Drop every vector (used before a rebuild)."""
        self.client.drop_collection(self.collection)
        self.__init__(self.dim, self.uri, self.collection, self.index_type)

    def _present(self, ids: np.ndarray) -> np.ndarray:
        found = []
        for start in range(0, len(ids), FILTER_CHUNK):
            part = ids[start:start + FILTER_CHUNK].tolist()
            rows = self.client.query(self.collection, filter=f"id in {part}", output_fields=["id"])
            found += [r["id"] for r in rows]
        return np.array(found, np.int64)

    def add(self, ids, vecs) -> None:
        vecs = as_vectors(vecs, self.dim)
        ids = as_ids(ids, len(vecs))
        clash = self._present(ids)
        if len(clash):
            raise ValueError(f"id {int(clash[0])} is already in the index ({len(clash)} such ids)")
        for start in range(0, len(ids), INSERT_BATCH):
            stop = start + INSERT_BATCH
            rows = [{"id": int(i), "vector": v} for i, v in zip(ids[start:stop], vecs[start:stop])]
            self.client.insert(self.collection, rows)

    def remove(self, ids) -> int:
        ids = np.unique(as_ids(np.atleast_1d(ids), what="ids to remove", distinct=False))
        present = self._present(ids)
        if len(present):
            self.client.delete(self.collection, ids=present.tolist())
        return len(present)

    def __len__(self) -> int:
        rows = self.client.query(self.collection, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def search(self, vecs, k: int, allowed: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
        vecs = as_vectors(vecs, self.dim, "queries")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        scores, ids = empty_result(len(vecs), k)
        if not len(vecs) or (allowed is not None and not len(allowed)):
            return scores, ids
        expr = f"id in {np.asarray(allowed, np.int64).tolist()}" if allowed is not None else ""
        hits = self.client.search(self.collection, data=[v for v in vecs], limit=k, filter=expr,
                                  output_fields=["id"], search_params={"metric_type": "IP"})
        for row, found in enumerate(hits):
            for col, hit in enumerate(found[:k]):
                ids[row, col], scores[row, col] = hit["id"], hit["distance"]
        return scores, ids

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uri": self.uri, "collection": self.collection, "index_type": self.index_type}

    def save(self, path: str | Path) -> Path:
        self.client.flush(self.collection)
        header = {"engine": self.engine, "dim": self.dim, "uri": self.uri, "collection": self.collection,
                  "index_type": self.index_type, "state": self.state}
        return write_index_file(path, header, lambda sink: None)

    @classmethod
    def load(cls, path: str | Path) -> "MilvusIndex":
        path = Path(path)
        with open_index_file(path) as (header, _):
            try:
                index = cls(int(header["dim"]), header["uri"], header["collection"], header["index_type"], create=False)
            except KeyError as e:
                raise IndexFileError(f"{path}: Milvus pointer lacks {e}") from None
        index.state = dict(header.get("state") or {})
        return index
