"""Evaluating a model the way its config says (fast-reid's test loader and TEST.* options)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from torch import nn

from ..data.datasets import ImageRecord
from ..evaluation import evaluate
from ..evaluation.evaluator import options_from_config

logger = logging.getLogger(__name__)


@dataclass
class TestSet:
    """A query/gallery split to evaluate on."""

    name: str
    query: list[ImageRecord]
    gallery: list[ImageRecord]


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def test_embedder(cfg, model: nn.Module, device: torch.device | str = "cpu", runtime: str = "torch"):
    """The :class:`~reidkit.inference.Embedder` that evaluates ``model`` as ``cfg.TEST`` and
    ``cfg.INPUT.SIZE_TEST`` say (fast-reid's test loader: PIL bicubic resize, optional flip)."""
    from ..inference import Embedder

    return Embedder.from_model(unwrap(model), tuple(cfg.INPUT.SIZE_TEST), device=str(device), runtime=runtime,
                               flip=cfg.TEST.FLIP.ENABLED, batch_size=cfg.TEST.IMS_PER_BATCH,
                               workers=max(1, min(cfg.DATALOADER.NUM_WORKERS, os.cpu_count() or 1)))


def evaluate_embedder(cfg, embedder, test_set: TestSet, progress: bool = False) -> dict[str, float]:
    """Rank metrics of ``embedder``'s features on a query/gallery split, with TEST.* options from
    ``cfg``; unreadable images are left out with a warning each."""
    from ..inference.extract import extract_query_gallery

    feats = extract_query_gallery(embedder, test_set, progress)
    for reason in feats.skipped:
        logger.warning("skipped unreadable image: %s", reason)
    return evaluate(feats.arrays, **options_from_config(cfg.TEST))


def evaluate_model(cfg, model: nn.Module, test_set: TestSet, device: torch.device | str = "cpu",
                   runtime: str = "torch", progress: bool = False) -> dict[str, float]:
    """Rank metrics of ``model`` on a query/gallery split (see :func:`test_embedder`)."""
    with torch.no_grad():
        return evaluate_embedder(cfg, test_embedder(cfg, model, device, runtime), test_set, progress)
