"""The training loop and its hooks.

``Trainer.train()`` runs epochs of ``iters_per_epoch`` steps. Hooks are called in this order:
``before_train``; per step ``before_step`` then ``after_step``; ``after_epoch``; ``after_train``.
Everything a resumed run needs (model, optimizer, scaler, epoch, step within the epoch) is in
``last.pth``; batches and augmentations are functions of (seed, epoch, step), so a resumed run
continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import atomic_save, load_checkpoint
from ..checkpoint.io import CheckpointError, state_dict_difference
from ..data.datasets import ImageRecord
from ..data.loader import ImageDataset, batch_loader
from ..data.samplers import build_sampler
from ..data.transforms import build_transform
from ..evaluation import evaluate
from ..evaluation.evaluator import options_from_config
from ..fileio import atomic_write_text
from .allocator import keep_freed_memory
from .solver import build_optimizer, lr_factor, set_lr

logger = logging.getLogger(__name__)


@dataclass
class TestSet:
    name: str
    query: list[ImageRecord]
    gallery: list[ImageRecord]


@dataclass
class TrainState:
    epoch: int = 0
    step_in_epoch: int = 0
    iteration: int = 0
    skipped_images: int = 0
    best_map: float = -1.0
    last_losses: dict[str, float] = field(default_factory=dict)


class Hook:
    """Override any of these; ``trainer`` gives access to model, optimizer, state and config."""

    def before_train(self, trainer: "Trainer") -> None: ...
    def before_step(self, trainer: "Trainer") -> None: ...
    def after_step(self, trainer: "Trainer") -> None: ...
    def after_epoch(self, trainer: "Trainer") -> None: ...
    def after_train(self, trainer: "Trainer") -> None: ...


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def model_meta(cfg, model: nn.Module, num_classes: int) -> dict[str, Any]:
    """What an embedder needs besides the weights: the config and the model card."""
    from ..model_card import ModelCard

    m = unwrap(model)
    card = ModelCard.from_meta({"embedding_dim": int(m.embedding_dim), "classifier_key": m.classifier_key},
                               "the model being trained", cfg=cfg)
    return {"config": cfg.dump(), "num_classes": num_classes, **card.to_meta()}


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


def cpu_has_native_bf16() -> bool:
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def amp_dtype(cfg, device: torch.device):
    """fp16 on CUDA; bf16 on CPUs that compute it natively; otherwise None (fp32), said once."""
    if not cfg.SOLVER.AMP.ENABLED:
        return None
    if device.type == "cuda":
        return torch.float16
    if cpu_has_native_bf16():
        return torch.bfloat16
    logger.info("SOLVER.AMP.ENABLED: this CPU has no native bf16 (autocast would be slower), training in fp32")
    return None


class Trainer:
    def __init__(self, cfg, model: nn.Module, train_records: list[ImageRecord], test_sets: list[TestSet],
                 output_dir: str | Path, device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1,
                 hooks: list[Hook] | None = None, progress: bool = True, sampler=None):
        """``sampler`` (an object with ``iters_per_epoch`` and ``epoch(epoch, start)``, as in
        :mod:`reidkit.data.samplers`) replaces the one DATALOADER.SAMPLER_TRAIN names."""
        self.cfg = cfg
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.output_dir = Path(output_dir)
        self.model = model.to(self.device)
        self.num_classes = int(unwrap(model).state_dict()[unwrap(model).classifier_key].shape[0])
        self.optimizer = build_optimizer(cfg, unwrap(model))
        self.seed = cfg.SEED
        self.train_set = ImageDataset(train_records, build_transform(cfg, is_train=True), cfg.DATALOADER.STRICT)
        self.sampler = sampler or build_sampler(cfg, [r.pid for r in train_records], [r.camid for r in train_records],
                                                self.seed, rank, world_size)
        self.iters_per_epoch = self.sampler.iters_per_epoch
        self.max_iter = cfg.SOLVER.MAX_EPOCH * self.iters_per_epoch
        self.test_sets = test_sets
        self.state = TrainState()
        self.amp_dtype = amp_dtype(cfg, self.device)
        # channels-last convolutions are about twice as fast on CPUs (measured: Lite0 6.7 -> 12.5 img/s).
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        if self.device.type == "cpu" and keep_freed_memory():
            logger.info("malloc keeps freed activation buffers for reuse (faster CPU steps, higher resident peak)")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.frozen = [getattr(unwrap(model), name) for name in cfg.MODEL.FREEZE_LAYERS]
        self.hooks = hooks if hooks is not None else default_hooks(self, progress)

    # ---- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"model": unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "trainer": vars(self.state).copy(),
                "meta": model_meta(self.cfg, self.model, self.num_classes)}

    def resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path)
        if "trainer" not in ckpt:
            raise ValueError(f"{path} holds weights only (no optimizer or progress): use MODEL.WEIGHTS to start from it")
        difference = state_dict_difference(unwrap(self.model).state_dict(), ckpt["model"])
        if difference:
            raise CheckpointError(f"{path} was saved by another model than this config describes ({difference}): "
                                  f"resume with the config of that run ({Path(path).parent / 'config.yaml'}), or "
                                  "start afresh with --force")
        unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["trainer"])
        logger.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step_in_epoch)

    # ---- loop --------------------------------------------------------------------------------

    def run_step(self, batch: dict) -> dict[str, float]:
        it = self.state.iteration
        frozen = it < self.cfg.SOLVER.FREEZE_ITERS
        self.model.train()
        for m in self.frozen:
            m.train(not frozen)
        images = batch["images"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        targets = batch["targets"].to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None):
            losses = self.model(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {total.item()} at iteration {it}: lower SOLVER.BASE_LR or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if frozen:
            for m in self.frozen:
                for p in m.parameters():
                    p.grad = None
        clip = self.cfg.SOLVER.CLIP_GRADIENTS
        if clip.ENABLED:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            if clip.CLIP_TYPE == "value":
                torch.nn.utils.clip_grad_value_(params, clip.CLIP_VALUE)
            else:
                torch.nn.utils.clip_grad_norm_(params, clip.CLIP_VALUE, clip.NORM_TYPE)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return {k: float(v.detach()) for k, v in losses.items()}

    def train(self) -> TrainState:
        for h in self.hooks:
            h.before_train(self)
        while self.state.epoch < self.cfg.SOLVER.MAX_EPOCH:
            batches = self.sampler.epoch(self.state.epoch, self.state.step_in_epoch)
            for batch in batch_loader(self.train_set, batches, self.cfg.DATALOADER.NUM_WORKERS):
                for h in self.hooks:
                    h.before_step(self)
                if batch is not None:
                    self.state.skipped_images += batch["skipped"]
                    self.state.last_losses = self.run_step(batch)
                self.state.iteration += 1
                self.state.step_in_epoch += 1
                for h in self.hooks:
                    h.after_step(self)
            self.state.epoch += 1
            self.state.step_in_epoch = 0
            for h in self.hooks:
                h.after_epoch(self)
        if self.world_size > 1:
            # BN statistics are per process between DDP's broadcasts: leave every rank with rank 0's.
            for buf in unwrap(self.model).buffers():
                torch.distributed.broadcast(buf, 0)
        for h in self.hooks:
            h.after_train(self)
        if self.state.skipped_images:
            logger.warning("%d unreadable training images were skipped (DATALOADER.STRICT True stops instead)",
                           self.state.skipped_images)
        return self.state


# ---- hooks ---------------------------------------------------------------------------------

class LRSchedule(Hook):
    def before_step(self, t: Trainer) -> None:
        set_lr(t.optimizer, lr_factor(t.cfg, t.state.iteration, t.iters_per_epoch))


class Checkpointer(Hook):
    """``last.pth`` after every epoch and every ``every_seconds`` mid-epoch; ``model_NNNN.pth``
    every CHECKPOINT_PERIOD epochs (the newest ``keep`` kept) and ``model_final.pth`` at the end."""

    def __init__(self, keep: int = 3, every_seconds: float = 600.0):
        self.keep = keep
        self.every_seconds = every_seconds
        self._last_save = time.monotonic()

    def save_last(self, t: Trainer) -> None:
        if t.rank == 0:
            atomic_save(t.state_dict(), t.output_dir / "last.pth")
        self._last_save = time.monotonic()

    def after_step(self, t: Trainer) -> None:
        if time.monotonic() - self._last_save > self.every_seconds and t.state.step_in_epoch < t.iters_per_epoch:
            self.save_last(t)

    def after_epoch(self, t: Trainer) -> None:
        self.save_last(t)
        if t.rank == 0 and t.state.epoch % t.cfg.SOLVER.CHECKPOINT_PERIOD == 0:
            atomic_save(t.state_dict(), t.output_dir / f"model_{t.state.epoch:04d}.pth")
            for old in sorted(t.output_dir.glob("model_[0-9]*.pth"))[:-self.keep]:
                old.unlink()

    def after_train(self, t: Trainer) -> None:
        if t.rank == 0:
            state = t.state_dict()
            atomic_save({"model": state["model"], "meta": state["meta"]}, t.output_dir / "model_final.pth")


class PeriodicEvaluator(Hook):
    """Evaluates on the test sets every EVAL_PERIOD epochs and at the end; keeps ``model_best.pth``."""

    def __init__(self):
        self.results: list[dict] = []

    def before_train(self, t: Trainer) -> None:
        """A resumed run keeps the evaluations of the epochs it already went through."""
        path = t.output_dir / "eval.csv"
        if t.rank != 0 or not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        self.results = [{k: (v if k == "dataset" else int(v) if k == "epoch" else float(v)) for k, v in r.items()}
                        for r in rows if int(r["epoch"]) <= t.state.epoch]

    def _run(self, t: Trainer) -> None:
        if t.rank != 0 or not t.test_sets:
            return
        for ts in t.test_sets:
            metrics = evaluate_model(t.cfg, unwrap(t.model), ts, t.device)
            metrics = {"epoch": t.state.epoch, "dataset": ts.name, **metrics}
            self.results.append(metrics)
            logger.info("epoch %d %s: %s", t.state.epoch, ts.name,
                        ", ".join(f"{k} {v:.2f}" for k, v in metrics.items() if isinstance(v, float)))
        first = [r for r in self.results if r["epoch"] == t.state.epoch][0]
        if first["mAP"] > t.state.best_map:
            t.state.best_map = first["mAP"]
            state = t.state_dict()
            atomic_save({"model": state["model"], "meta": {**state["meta"], "metrics": first}},
                        t.output_dir / "model_best.pth")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(self.results[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.results)
        atomic_write_text(t.output_dir / "eval.csv", text.getvalue())

    def after_epoch(self, t: Trainer) -> None:
        period = t.cfg.TEST.EVAL_PERIOD
        if period > 0 and t.state.epoch % period == 0 and t.state.epoch < t.cfg.SOLVER.MAX_EPOCH:
            self._run(t)

    def after_train(self, t: Trainer) -> None:
        self._run(t)


def drop_rows_after(path: Path, iteration: int) -> None:
    """Forget the rows a killed run logged past the checkpoint it resumes from, so a resumed
    run's ``metrics.csv`` has each iteration once."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["iteration"]:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= iteration]
    if len(kept) == len(rows):
        return
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(kept)
    atomic_write_text(path, text.getvalue())


class MetricsWriter(Hook):
    """Losses, lr and speed to ``metrics.csv`` (and TensorBoard when installed) every ``period`` steps."""

    def __init__(self, period: int = 20):
        self.period = period
        self.tb = None
        self._t0 = time.monotonic()
        self._images = 0

    def before_train(self, t: Trainer) -> None:
        if t.rank != 0:
            return
        t.output_dir.mkdir(parents=True, exist_ok=True)
        drop_rows_after(t.output_dir / "metrics.csv", t.state.iteration)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(t.output_dir / "tensorboard"))
        except ImportError:
            logger.info("TensorBoard logs need the tensorboard package (pip install tensorboard); writing CSV only")
            self.tb = None

    def after_step(self, t: Trainer) -> None:
        self._images += t.cfg.SOLVER.IMS_PER_BATCH
        if t.rank != 0 or t.state.iteration % self.period or not t.state.last_losses:
            return
        elapsed = time.monotonic() - self._t0
        row = {"iteration": t.state.iteration, "epoch": t.state.epoch, "lr": t.optimizer.param_groups[0]["lr"],
               "images_per_s": self._images / max(elapsed, 1e-9), **t.state.last_losses}
        path = t.output_dir / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "iteration":
                    self.tb.add_scalar(k, v, t.state.iteration)
        self._t0, self._images = time.monotonic(), 0

    def after_train(self, t: Trainer) -> None:
        if self.tb is not None:
            self.tb.close()


class ProgressBar(Hook):
    def before_train(self, t: Trainer) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=t.max_iter, initial=t.state.iteration, disable=t.rank != 0, unit="it", dynamic_ncols=True)
        self.t0 = time.monotonic()
        self.start_iter = t.state.iteration

    def after_step(self, t: Trainer) -> None:
        done = t.state.iteration - self.start_iter
        speed = done * t.cfg.SOLVER.IMS_PER_BATCH / max(time.monotonic() - self.t0, 1e-9)
        losses = " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in t.state.last_losses.items())
        self.bar.set_postfix_str(f"ep {t.state.epoch} {losses} lr {t.optimizer.param_groups[0]['lr']:.2e} "
                                 f"{speed:.1f} img/s", refresh=False)
        self.bar.update(1)

    def after_train(self, t: Trainer) -> None:
        self.bar.close()


def default_hooks(trainer: Trainer, progress: bool = True) -> list[Hook]:
    hooks: list[Hook] = [LRSchedule(), MetricsWriter(), Checkpointer(), PeriodicEvaluator()]
    if progress:
        hooks.append(ProgressBar())
    return hooks
