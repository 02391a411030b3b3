"""Trainers: a simple one (model, optimizer, batches), its AMP variant, and the one a config builds.

:class:`SimpleTrainer` runs the loop of :mod:`.train_loop` with a short ``run_step``: forward,
losses, backward, step. :class:`AMPTrainer` runs the forward pass under autocast with a gradient
scaler. :class:`Trainer` builds everything from a config (optimizer, sampler, transforms, AMP,
frozen layers, gradient clipping) with the default hooks. Everything a resumed run needs (model,
optimizer, scaler, epoch, step within the epoch, the hooks' state) is in ``last.pth``; batches
and augmentations are functions of (seed, epoch, step), so a resumed run continues exactly as an
uninterrupted one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..checkpoint import load_checkpoint
from ..checkpoint.io import CheckpointError, state_dict_difference
from ..data.datasets import ImageRecord
from ..data.loader import ImageDataset, batch_loader
from ..data.samplers import build_sampler
from ..data.transforms import build_transform
from .allocator import keep_freed_memory
from .hooks import Checkpointer, LRSchedule, MetricsWriter, PeriodicEvaluator, ProgressBar
from .solver import build_optimizer, lr_factor
from .testing import TestSet, evaluate_model, unwrap
from .train_loop import Hook, TrainerBase

logger = logging.getLogger(__name__)


def model_meta(cfg, model: nn.Module, num_classes: int) -> dict[str, Any]:
    """What an embedder needs besides the weights: the config and the model card."""
    from ..model_card import ModelCard

    m = unwrap(model)
    card = ModelCard.from_meta({"embedding_dim": int(m.embedding_dim), "classifier_key": m.classifier_key},
                               "the model being trained", cfg=cfg)
    return {"config": cfg.dump(), "num_classes": num_classes, **card.to_meta()}


class SimpleTrainer(TrainerBase):
    """``model(images, targets)`` -> losses, summed, back-propagated, one ``optimizer`` step.

    ``sampler`` (``iters_per_epoch`` and ``epoch(epoch, start)`` -> batches of dataset items, as
    in :mod:`reidkit.data.samplers`) and ``dataset`` give the batches; ``lr_factor(iteration)``
    is what :class:`~.hooks.LRSchedule` applies by default."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, dataset: ImageDataset, sampler,
                 max_epoch: int, output_dir: str | Path, device: torch.device | str = "cpu", num_workers: int = 0,
                 lr_factor: Callable[[int], float] = lambda iteration: 1.0, rank: int = 0,
                 hooks: Optional[Sequence[Hook]] = None):
        super().__init__(max_epoch, hooks)
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer, self.dataset, self.sampler = optimizer, dataset, sampler
        self.output_dir, self.num_workers, self.rank = Path(output_dir), num_workers, rank
        self.lr_factor = lr_factor
        self.iters_per_epoch = sampler.iters_per_epoch
        self.max_iter = max_epoch * self.iters_per_epoch
        # channels-last convolutions are about twice as fast on CPUs (measured: Lite0 6.7 -> 12.5 img/s).
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)

    def epoch_batches(self, epoch: int, start: int):
        return batch_loader(self.dataset, self.sampler.epoch(epoch, start), self.num_workers)

    def run_step(self, batch: dict) -> dict[str, float]:
        self.state.skipped_images += batch["skipped"]
        self.model.train()
        images = batch["images"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        targets = batch["targets"].to(self.device, non_blocking=True)
        losses = self.forward(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {total.item()} at iteration {self.state.iteration}: lower "
                                     "SOLVER.BASE_LR or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.backward_and_step(total)
        return {k: float(v.detach()) for k, v in losses.items()}

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(images, targets)

    def backward_and_step(self, total: torch.Tensor) -> None:
        total.backward()
        self.optimizer.step()

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """What ``last.pth`` holds: weights, optimizer, loop and hook state."""
        return {"model": unwrap(self.model).state_dict(), "optimizer": self.optimizer.state_dict(),
                **self.loop_state_dict()}

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
        self.load_extra_state(ckpt)
        self.load_loop_state_dict(ckpt)
        logger.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step_in_epoch)

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        """What a subclass added to :meth:`checkpoint`."""


class AMPTrainer(SimpleTrainer):
    """The forward pass under autocast in ``amp_dtype`` (fp16 with a gradient scaler on CUDA,
    bf16 on CPU); None runs in fp32, exactly as :class:`SimpleTrainer`."""

    def __init__(self, *args, amp_dtype: Optional[torch.dtype] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            return self.model(images, targets)

    def backward_and_step(self, total: torch.Tensor) -> None:
        self.scaler.scale(total).backward()
        self.before_optimizer_step()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def before_optimizer_step(self) -> None:
        """Between backward and step, with the gradients unscaled on request (:meth:`unscaled`)."""

    def unscaled(self) -> None:
        self.scaler.unscale_(self.optimizer)

    def checkpoint(self) -> dict[str, Any]:
        return {**super().checkpoint(), "scaler": self.scaler.state_dict()}

    def load_extra_state(self, ckpt: dict[str, Any]) -> None:
        self.scaler.load_state_dict(ckpt["scaler"])


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


class Trainer(AMPTrainer):
    """The trainer a config describes: SOLVER.* (optimizer, lr schedule, AMP, frozen layers for
    FREEZE_ITERS, gradient clipping), DATALOADER.* (identity sampler, workers), INPUT.*
    (transforms); with :func:`default_hooks` unless ``hooks`` are given."""

    def __init__(self, cfg, model: nn.Module, train_records: list[ImageRecord], test_sets: list[TestSet],
                 output_dir: str | Path, device: torch.device | str = "cpu", rank: int = 0, world_size: int = 1,
                 hooks: list[Hook] | None = None, progress: bool = True, sampler=None):
        """``sampler`` (an object with ``iters_per_epoch`` and ``epoch(epoch, start)``, as in
        :mod:`reidkit.data.samplers`) replaces the one DATALOADER.SAMPLER_TRAIN names."""
        device = torch.device(device)
        sampler = sampler or build_sampler(cfg, [r.pid for r in train_records], [r.camid for r in train_records],
                                           cfg.SEED, rank, world_size)
        dataset = ImageDataset(train_records, build_transform(cfg, is_train=True), cfg.DATALOADER.STRICT)
        super().__init__(model, build_optimizer(cfg, unwrap(model)), dataset, sampler, cfg.SOLVER.MAX_EPOCH,
                         output_dir, device, cfg.DATALOADER.NUM_WORKERS,
                         lambda iteration: lr_factor(cfg, iteration, sampler.iters_per_epoch), rank,
                         amp_dtype=amp_dtype(cfg, device))
        self.cfg, self.world_size, self.test_sets = cfg, world_size, test_sets
        self.num_classes = int(unwrap(model).state_dict()[unwrap(model).classifier_key].shape[0])
        if self.device.type == "cpu" and keep_freed_memory():
            logger.info("malloc keeps freed activation buffers for reuse (faster CPU steps, higher resident peak)")
        self.frozen = [getattr(unwrap(model), name) for name in cfg.MODEL.FREEZE_LAYERS]
        self.hooks = hooks if hooks is not None else default_hooks(self, progress)

    def _freezing(self) -> bool:
        return self.state.iteration < self.cfg.SOLVER.FREEZE_ITERS

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        for m in self.frozen:  # frozen layers keep their BatchNorm statistics too
            m.train(not self._freezing())
        return super().forward(images, targets)

    def before_optimizer_step(self) -> None:
        if self._freezing():
            for m in self.frozen:
                for p in m.parameters():
                    p.grad = None
        clip = self.cfg.SOLVER.CLIP_GRADIENTS
        if clip.ENABLED:
            self.unscaled()
            params = [p for p in self.model.parameters() if p.grad is not None]
            if clip.CLIP_TYPE == "value":
                torch.nn.utils.clip_grad_value_(params, clip.CLIP_VALUE)
            else:
                torch.nn.utils.clip_grad_norm_(params, clip.CLIP_VALUE, clip.NORM_TYPE)

    def checkpoint(self) -> dict[str, Any]:
        return {**super().checkpoint(), "meta": model_meta(self.cfg, self.model, self.num_classes)}

    def evaluate(self) -> list[tuple[str, dict[str, float]]]:
        """Rank metrics of the model on every test set."""
        return [(ts.name, evaluate_model(self.cfg, unwrap(self.model), ts, self.device)) for ts in self.test_sets]

    def end_of_training(self) -> None:
        if self.world_size > 1:
            # BN statistics are per process between DDP's broadcasts: leave every rank with rank 0's.
            for buf in unwrap(self.model).buffers():
                torch.distributed.broadcast(buf, 0)
        if self.state.skipped_images:
            logger.warning("%d unreadable training images were skipped (DATALOADER.STRICT True stops instead)",
                           self.state.skipped_images)


def default_hooks(trainer: Trainer, progress: bool = True) -> list[Hook]:
    """lr schedule, metrics.csv, checkpoints, periodic evaluation, and a progress bar."""
    cfg = trainer.cfg
    hooks: list[Hook] = [LRSchedule(), MetricsWriter(cfg.SOLVER.IMS_PER_BATCH),
                         Checkpointer(cfg.SOLVER.CHECKPOINT_PERIOD),
                         PeriodicEvaluator(trainer.evaluate, cfg.TEST.EVAL_PERIOD)]
    if progress:
        hooks.append(ProgressBar(cfg.SOLVER.IMS_PER_BATCH))
    return hooks
