"""From a config to a ready Trainer: datasets, model, weights, device and DDP."""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import DatasetError, ImageRecord, build_dataset
from ..modeling import build_model
from ..checkpoint import load_model_weights
from .testing import TestSet

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_records(cfg) -> list[ImageRecord]:
    """Training images of every dataset in DATASETS.NAMES, identities numbered 0..N-1 across them
    (with COMBINEALL, the labelled query/gallery identities join as further classes)."""
    keyed: list[tuple[tuple, ImageRecord]] = []
    for name in cfg.DATASETS.NAMES:
        ds = build_dataset(name, cfg.DATASETS.ROOT)
        if not ds.train and not cfg.DATASETS.COMBINEALL:
            raise DatasetError(f"DATASETS.NAMES {name} under {cfg.DATASETS.ROOT}: training needs labelled images, "
                               f"and {'; '.join(ds.notes) or 'there are none'}")
        keyed += [((name, "train", r.pid), r) for r in ds.train]
        if cfg.DATASETS.COMBINEALL:
            keyed += [((name, "test", r.pid), r) for r in ds.query + ds.gallery if r.pid > 0]
    if not keyed:
        raise DatasetError(f"no training images in DATASETS.NAMES {list(cfg.DATASETS.NAMES)} under {cfg.DATASETS.ROOT}")
    labels = {key: i for i, key in enumerate(sorted({k for k, _ in keyed}, key=str))}
    return [ImageRecord(r.path, labels[k], r.camid) for k, r in keyed]


def test_sets(cfg) -> list[TestSet]:
    sets = []
    for name in cfg.DATASETS.TESTS:
        ds = build_dataset(name, cfg.DATASETS.ROOT)
        sets.append(TestSet(name, ds.query, ds.gallery))
    return sets


def resolve_device(cfg) -> torch.device:
    wanted = cfg.MODEL.DEVICE
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        logger.info("MODEL.DEVICE is %s but no CUDA device is available: using the CPU", wanted)
        return torch.device("cpu")
    return torch.device(wanted)


def distributed_context() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when not launched by it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def prepare_model(cfg, num_classes: int, device: torch.device, world_size: int, local_rank: int):
    """The model of ``cfg`` with ``num_classes`` outputs, MODEL.WEIGHTS loaded, on ``device``
    (wrapped for DDP when ``world_size`` > 1)."""
    cfg = cfg.clone().freeze(False)
    cfg.MODEL.HEADS.NUM_CLASSES = num_classes
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        load_model_weights(model, cfg.MODEL.WEIGHTS)
    model.to(device)
    if world_size > 1:
        if "syncBN" in (cfg.MODEL.BACKBONE.NORM, cfg.MODEL.HEADS.NORM):
            if device.type != "cuda":
                raise ValueError("NORM syncBN needs CUDA devices; use BN for training on CPUs")
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, find_unused_parameters=False)
    return model


def init_distributed(device: torch.device, world_size: int) -> None:
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def output_dir(cfg) -> Path:
    path = Path(cfg.OUTPUT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path
