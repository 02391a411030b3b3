#!/usr/bin/env python
"""Training throughput (images/s): reidkit's trainer beside fast-reid's DefaultTrainer.

Runs the real loop (identity sampler, loader workers, transforms, forward, losses, backward,
optimizer step, the trainer's hooks) on one synthetic Market-layout dataset at the configs' input
size, and reports the steady-state rate after a few warm-up iterations. Each measurement runs in
a fresh process with the same threads and loader workers.

    python benchmarks/bench_train.py [--batch 16 64] [--iters 6] [--configs r50 lite0]
                                     [--fastreid PATH_TO_FAST_REID_CHECKOUT]

With --fastreid, fast-reid's own DefaultTrainer trains bagtricks_R50 from its own config file on
the same data (it has no EfficientNet-Lite, so Lite0 is reidkit only). fast-reid needs
`termcolor tabulate yacs scikit-learn` importable (e.g. `pip install --target DIR ...` and
`--fastreid-pythonpath DIR`). Three runtime work-arounds are applied to it, nothing else changed:
the two of `fastreid_side.import_fastreid` (``collections.Mapping``; a plain DataLoader in place
of its CUDA-only `DataLoaderX`), and its optimizer's `zero_grad` keeps gradient buffers
(`set_to_none=False`): on PyTorch 2 the default drops the gradients of its contiguous parameter
buffer, so it would time a loop that never updates a weight. Both workers check that every
trainable parameter moved before they report a rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastreid_side import count_moved, import_fastreid, peak_rss_gb, trainable_snapshot

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"r50": REPO / "configs" / "Market1501" / "bagtricks_R50.yml",
           "lite0": REPO / "configs" / "CUHK03" / "lite0_default.yml"}


def reidkit_rate(config: Path, root: Path, batch: int, iters: int, warmup: int, workers: int) -> dict:
    import torch

    from reidkit.config import load_config
    from reidkit.engine import launch
    from reidkit.engine.hooks import Hook, LRSchedule
    from reidkit.engine.trainer import Trainer

    class Timer(Hook):
        def __init__(self) -> None:
            self.start = 0.0
            self.rate = 0.0

        def after_step(self, t: Trainer) -> None:
            if t.state.iteration == warmup:
                self.start = time.perf_counter()
            if t.state.iteration == warmup + iters:
                self.rate = iters * batch / (time.perf_counter() - self.start)
                raise StopIteration

    pretrain = "efficientnet" in load_config(config).MODEL.BACKBONE.NAME
    cfg = load_config(config, ["MODEL.DEVICE", "cpu", "DATASETS.ROOT", str(root), "DATASETS.NAMES", "('Market1501',)",
                               "DATASETS.TESTS", "()", "SOLVER.IMS_PER_BATCH", str(batch),
                               "MODEL.BACKBONE.PRETRAIN", str(pretrain), "DATALOADER.NUM_WORKERS", str(workers),
                               "SOLVER.MAX_EPOCH", "100", "OUTPUT_DIR", tempfile.mkdtemp()])
    launch.seed_everything(0)
    records = launch.train_records(cfg)
    model = launch.prepare_model(cfg, len({r.pid for r in records}), torch.device("cpu"), 1, 0)
    snapshot = trainable_snapshot(model)
    timer = Timer()
    trainer = Trainer(cfg, model, records, [], cfg.OUTPUT_DIR, hooks=[LRSchedule(), timer], progress=False)
    try:
        trainer.train()
    except StopIteration:
        pass
    return {"rate": timer.rate, "params_moved": count_moved(snapshot), "params": len(snapshot[0]),
            "threads": torch.get_num_threads()}


def fastreid_rate(checkout: Path, root: Path, batch: int, iters: int, warmup: int, workers: int) -> dict:
    import functools

    os.environ["FASTREID_DATASETS"] = str(root)
    import_fastreid(checkout)
    import torch
    from fastreid.config import get_cfg
    from fastreid.engine import DefaultTrainer
    from fastreid.engine.hooks import HookBase

    cfg = get_cfg()
    cfg.merge_from_file(str(checkout / "configs" / "Market1501" / "bagtricks_R50.yml"))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "DATASETS.NAMES", "('Market1501',)",
                         "DATASETS.TESTS", "('Market1501',)", "SOLVER.IMS_PER_BATCH", str(batch), "SOLVER.AMP.ENABLED", "False",
                         "DATALOADER.NUM_WORKERS", str(workers), "TEST.EVAL_PERIOD", "1000", "SOLVER.MAX_EPOCH", "100",
                         "OUTPUT_DIR", tempfile.mkdtemp()])
    torch.manual_seed(0)
    trainer = DefaultTrainer(cfg)
    optimizer = trainer._trainer.optimizer
    optimizer.zero_grad = functools.partial(optimizer.zero_grad, set_to_none=False)
    snapshot = trainable_snapshot(trainer._trainer.model)

    class Timer(HookBase):
        start = 0.0
        rate = 0.0

        def after_step(self) -> None:
            done = self.trainer.iter + 1
            if done == warmup:
                self.start = time.perf_counter()
            if done == warmup + iters:
                Timer.rate = iters * batch / (time.perf_counter() - self.start)
                raise StopIteration

    trainer.register_hooks([Timer()])
    try:
        trainer.train()
    except StopIteration:
        pass
    return {"rate": Timer.rate, "params_moved": count_moved(snapshot), "params": len(snapshot[0]),
            "threads": torch.get_num_threads()}


def run_worker(args: argparse.Namespace, which: str, batch: int, extra_path: str = "") -> dict:
    cmd = [sys.executable, __file__, "--worker", which, "--root", str(args.root), "--batch", str(batch),
           "--iters", str(args.iters), "--warmup", str(args.warmup), "--workers", str(args.workers)]
    if args.fastreid:
        cmd += ["--fastreid", str(args.fastreid)]
    env = dict(os.environ)
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{which} worker failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="Loader worker processes (both trainers).")
    ap.add_argument("--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--fastreid", type=Path, help="A fast-reid checkout to measure beside reidkit.")
    ap.add_argument("--fastreid-pythonpath", default="", help="Extra import path for fast-reid's dependencies.")
    ap.add_argument("--worker", choices=[*CONFIGS, "fastreid"], help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        batch = args.batch[0]
        if args.worker == "fastreid":
            out = fastreid_rate(args.fastreid.resolve(), args.root, batch, args.iters, args.warmup, args.workers)
        else:
            out = reidkit_rate(CONFIGS[args.worker], args.root, batch, args.iters, args.warmup, args.workers)
        out["peak_rss_gb"] = peak_rss_gb()
        print(json.dumps(out))
        return

    from reidkit.data.synthetic import generate

    args.root = Path(tempfile.mkdtemp()) / "synth"
    generate(args.root, num_ids=400, num_cameras=4, images_per_camera=3, num_distractors=0, seed=0)
    print(f"{os.cpu_count()} CPUs; {args.workers} loader workers; warm-up {args.warmup} iterations, "
          f"then {args.iters} timed", flush=True)
    print("| model | batch | reidkit img/s | fast-reid img/s | speed-up | peak RSS reidkit / fast-reid (GB) |")
    print("|---|---|---|---|---|---|", flush=True)
    for name in args.configs:
        for batch in args.batch:
            ours = run_worker(args, name, batch)
            if ours["params_moved"] != ours["params"]:
                sys.exit(f"reidkit: only {ours['params_moved']} of {ours['params']} parameters changed")
            theirs = None
            if args.fastreid and name == "r50":
                theirs = run_worker(args, "fastreid", batch, args.fastreid_pythonpath)
                if theirs["params_moved"] == 0:
                    sys.exit("fast-reid updated no weights: its timing would be meaningless")
            fr = f"{theirs['rate']:.1f}" if theirs else "-"
            ratio = f"{ours['rate'] / theirs['rate']:.2f}x" if theirs else "-"
            mem = f"{ours['peak_rss_gb']:.2f} / {theirs['peak_rss_gb']:.2f}" if theirs else f"{ours['peak_rss_gb']:.2f} / -"
            print(f"| {name} | {batch} | {ours['rate']:.1f} | {fr} | {ratio} | {mem} |", flush=True)


if __name__ == "__main__":
    main()
