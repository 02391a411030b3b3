"""Features of a dataset's query and gallery images, in the layout ``reid eval-features`` reads.

Every command that evaluates a model on a split (``reid eval``, ``reid train`` evaluations,
``reid visualize``, ``reid demo``) embeds through here: one :class:`Embedder` pass per split with
decoding one batch ahead, a progress bar, and unreadable images skipped and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np

from ..data.datasets import ImageRecord


class FileEmbedder(Protocol):
    dim: int

    def embed_files(self, paths: Sequence[str], progress: Callable[[int], None] | None = None
                    ) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]: ...


class Split(Protocol):
    query: list[ImageRecord]
    gallery: list[ImageRecord]


@dataclass
class SplitFeatures:
    """Features of the readable query and gallery images, their ids and cameras, and what was skipped."""

    arrays: dict[str, np.ndarray]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    skipped: list[str] = field(default_factory=list)


def embed_records(embedder: FileEmbedder, records: list[ImageRecord], desc: str = "embedding",
                  progress: bool = True) -> tuple[np.ndarray, list[ImageRecord], list[str]]:
    """(features, the records they belong to, reasons of the images that could not be read)."""
    from tqdm import tqdm

    with tqdm(total=len(records), unit="img", desc=desc, disable=not progress, leave=False) as bar:
        feats, ok, failed = embedder.embed_files([r.path for r in records], progress=bar.update)
    return feats.astype(np.float32, copy=False), [records[i] for i in ok], [reason for _, reason in failed]


def extract_query_gallery(embedder: FileEmbedder, split: Split, progress: bool = True) -> SplitFeatures:
    """``q_feat``, ``g_feat``, ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids`` of a split."""
    q, q_recs, q_bad = embed_records(embedder, split.query, "query", progress)
    g, g_recs, g_bad = embed_records(embedder, split.gallery, "gallery", progress)
    if not len(q_recs) or not len(g_recs):
        which = "query" if not len(q_recs) else "gallery"
        raise ValueError(f"none of the {which} images could be read, e.g. {(q_bad or g_bad or ['?'])[0]}")

    def ids(recs, attr):
        return np.array([getattr(r, attr) for r in recs], np.int64)
    arrays = {"q_feat": q, "g_feat": g, "q_pids": ids(q_recs, "pid"), "g_pids": ids(g_recs, "pid"),
              "q_camids": ids(q_recs, "camid"), "g_camids": ids(g_recs, "camid")}
    return SplitFeatures(arrays, q_recs, g_recs, q_bad + g_bad)
