#!/usr/bin/env python
"""Training throughput (images/s) of reidkit's trainer: bagtricks_R50 and the Lite0 default.

Runs the real loop (sampler, loader workers, transforms, forward, losses, backward, optimizer
step) on a synthetic dataset at the configs' input size, and reports the steady-state rate after a
few warm-up iterations. Compare with fast-reid's DefaultTrainer on the same machine (issue 3 quotes
about 7-8 images/s for bagtricks_R50 at batch 16 on this 2-core kind, with its PyTorch-2 defect
worked around).

    python benchmarks/bench_train.py [--batch 64] [--iters 6] [--configs r50 lite0]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from reidkit.config import load_config
from reidkit.data.synthetic import generate
from reidkit.engine import launch
from reidkit.engine.trainer import Hook, LRSchedule, Trainer

REPO = Path(__file__).parents[1]
CONFIGS = {"r50": REPO / "configs" / "Market1501" / "bagtricks_R50.yml",
           "lite0": REPO / "configs" / "CUHK03" / "lite0_default.yml"}


class Timer(Hook):
    def __init__(self, warmup: int, iters: int):
        self.warmup, self.iters = warmup, iters
        self.start = None
        self.rate = None

    def after_step(self, t: Trainer) -> None:
        if t.state.iteration == self.warmup:
            self.start = time.perf_counter()
        if t.state.iteration == self.warmup + self.iters:
            self.rate = self.iters * t.cfg.SOLVER.IMS_PER_BATCH / (time.perf_counter() - self.start)
            raise StopIteration


def measure(config: Path, root: Path, batch: int, iters: int, warmup: int, workers: int) -> float:
    cfg = load_config(config, ["MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(root), "DATASETS.NAMES", "('Market1501',)",
                               "DATASETS.TESTS", "()", "SOLVER.IMS_PER_BATCH", str(batch), "MODEL.BACKBONE.PRETRAIN",
                               str("efficientnet" in load_config(config).MODEL.BACKBONE.NAME),
                               "DATALOADER.NUM_WORKERS", str(workers), "SOLVER.MAX_EPOCH", "100",
                               "OUTPUT_DIR", tempfile.mkdtemp()])
    launch.seed_everything(0)
    records = launch.train_records(cfg)
    model = launch.prepare_model(cfg, len({r.pid for r in records}), torch.device("cpu"), 1, 0)
    timer = Timer(warmup, iters)
    trainer = Trainer(cfg, model, records, [], cfg.OUTPUT_DIR, hooks=[LRSchedule(), timer], progress=False)
    try:
        trainer.train()
    except StopIteration:
        pass
    return timer.rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp()) / "synth"
    generate(root, num_ids=400, num_cameras=4, images_per_camera=3, num_distractors=0, seed=0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.configs:
        for batch in args.batch:
            rate = measure(CONFIGS[name], root, batch, args.iters, args.warmup, args.workers)
            print(f"{name:6s} batch {batch:3d}: {rate:6.1f} images/s", flush=True)


if __name__ == "__main__":
    main()
