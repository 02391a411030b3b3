"""Training and test data loading: images from records, transformed, batched by a sampler.

An image that fails to decode is skipped with one warning line and counted; with
``DATALOADER.STRICT`` it is an error naming the file instead.
"""

from __future__ import annotations

import logging
import os

import torch
from torch.utils.data import DataLoader, Dataset

from ..images import ImageReadError, read_pil
from .datasets import ImageRecord

logger = logging.getLogger(__name__)


class ImageDataset(Dataset):
    """Items are ``(index, augmentation seed)`` pairs; returns (image, pid, camid, index) or None."""

    def __init__(self, records: list[ImageRecord], transform, strict: bool = False):
        self.records = records
        self.transform = transform
        self.strict = strict

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item):
        index, seed = item if isinstance(item, tuple) else (item, 0)
        rec = self.records[index]
        try:
            img = read_pil(rec.path)
        except ImageReadError as exc:
            if self.strict:
                raise ImageReadError(f"{exc} (DATALOADER.STRICT is on)") from None
            logger.warning("skipping unreadable image: %s", exc)
            return None
        x = self.transform(img, torch.Generator().manual_seed(int(seed)))
        return x, rec.pid, rec.camid, index


def collate(items):
    """Stack the readable items; ``skipped`` counts the rest."""
    good = [it for it in items if it is not None]
    if not good:
        return None
    return {"images": torch.stack([g[0] for g in good]), "targets": torch.tensor([g[1] for g in good]),
            "camids": torch.tensor([g[2] for g in good]), "indices": torch.tensor([g[3] for g in good]),
            "skipped": len(items) - len(good)}


def batch_loader(dataset: ImageDataset, batches, num_workers: int) -> DataLoader:
    """Batches given as lists of items (from a sampler's ``epoch()``), loaded by worker processes
    (no more than the machine has CPUs)."""
    num_workers = min(num_workers, os.cpu_count() or 1)
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, collate_fn=collate,
                      persistent_workers=False, prefetch_factor=4 if num_workers else None)
