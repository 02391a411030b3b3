"""Features of a dataset's query and gallery images, in the layout ``reid eval-features`` reads."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..data.datasets import ImageRecord, ReidDataset


class Embedder(Protocol):
    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray: ...


def embed_records(embedder: Embedder, records: list[ImageRecord], batch_size: int = 64,
                  desc: str = "embedding", progress: bool = True) -> np.ndarray:
    """Features of the images of ``records``, in order."""
    out = []
    for s in tqdm(range(0, len(records), batch_size), desc=desc, disable=not progress, leave=False):
        batch = [np.asarray(Image.open(r.path).convert("RGB")) for r in records[s:s + batch_size]]
        out.append(embedder.embed(batch))
    return np.concatenate(out).astype(np.float32)


def extract_query_gallery(embedder: Embedder, dataset: ReidDataset, progress: bool = True) -> dict[str, np.ndarray]:
    """``q_feat``, ``g_feat``, ``q_pids``, ``g_pids``, ``q_camids``, ``g_camids``."""
    def ids(recs, attr):
        return np.array([getattr(r, attr) for r in recs], np.int64)
    return {
        "q_feat": embed_records(embedder, dataset.query, desc="query", progress=progress),
        "g_feat": embed_records(embedder, dataset.gallery, desc="gallery", progress=progress),
        "q_pids": ids(dataset.query, "pid"), "g_pids": ids(dataset.gallery, "pid"),
        "q_camids": ids(dataset.query, "camid"), "g_camids": ids(dataset.gallery, "camid"),
    }
