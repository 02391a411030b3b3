"""The trainer's hooks: learning rate, checkpoints, evaluation, metrics, progress bar.

Each takes plain parameters and keeps its own state; the checkpoint carries what a resumed run
needs (:meth:`Hook.state_dict`). They use of the trainer only ``state``, ``optimizer``,
``output_dir``, ``rank``, ``finished`` and ``checkpoint()``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..checkpoint import atomic_save
from ..fileio import atomic_write_text
from .solver import set_lr
from .train_loop import Hook

logger = logging.getLogger(__name__)

__all__ = ["Checkpointer", "Hook", "LRSchedule", "MetricsWriter", "PeriodicEvaluator", "ProgressBar", "drop_rows_after"]


class LRSchedule(Hook):
    """Sets every parameter group's lr to its initial lr x ``schedule(iteration)`` before each
    step; ``schedule`` None: the trainer's own (``trainer.lr_factor``, from SOLVER.*)."""

    def __init__(self, schedule: Optional[Callable[[int], float]] = None):
        self.schedule = schedule

    def before_step(self, t) -> None:
        set_lr(t.optimizer, (self.schedule or t.lr_factor)(t.state.iteration))


class Checkpointer(Hook):
    """``last.pth`` after every epoch and every ``every_seconds`` mid-epoch; ``model_NNNN.pth``
    every ``period`` epochs (the newest ``keep`` kept); ``model_final.pth`` when training finished."""

    def __init__(self, period: int = 1, keep: int = 3, every_seconds: float = 600.0):
        self.period, self.keep, self.every_seconds = max(1, int(period)), keep, every_seconds
        self._last_save = time.monotonic()

    def save_last(self, t) -> None:
        if t.rank == 0:
            atomic_save(t.checkpoint(), t.output_dir / "last.pth")
        self._last_save = time.monotonic()

    def after_step(self, t) -> None:
        if time.monotonic() - self._last_save > self.every_seconds and t.state.step_in_epoch < t.iters_per_epoch:
            self.save_last(t)

    def after_epoch(self, t) -> None:
        self.save_last(t)
        if t.rank == 0 and t.state.epoch % self.period == 0:
            atomic_save(t.checkpoint(), t.output_dir / f"model_{t.state.epoch:04d}.pth")
            for old in sorted(t.output_dir.glob("model_[0-9]*.pth"))[:-self.keep]:
                old.unlink()

    def after_train(self, t) -> None:
        if t.rank == 0 and t.finished:
            state = t.checkpoint()
            atomic_save({"model": state["model"], "meta": state["meta"]}, t.output_dir / "model_final.pth")


class PeriodicEvaluator(Hook):
    """Every ``period`` epochs and when training finished, ``evaluate()`` (-> a list of
    ``(dataset name, metrics)``); the results go to ``eval.csv`` and the best model by the first
    dataset's mAP to ``model_best.pth``. Earlier results travel in the checkpoint."""

    def __init__(self, evaluate: Callable[[], list[tuple[str, dict[str, float]]]], period: int):
        self.evaluate, self.period = evaluate, int(period)
        self.results: list[dict[str, Any]] = []
        self.best_map = -1.0

    def state_dict(self) -> dict[str, Any]:
        return {"results": [dict(r) for r in self.results], "best_map": self.best_map}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.results = [dict(r) for r in state.get("results", [])]
        self.best_map = float(state.get("best_map", -1.0))

    def _run(self, t) -> None:
        if t.rank != 0:
            return
        found = self.evaluate()
        if not found:
            return
        for name, metrics in found:
            row = {"epoch": t.state.epoch, "dataset": name, **metrics}
            self.results.append(row)
            logger.info("epoch %d %s: %s", t.state.epoch, name,
                        ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)))
        first = [r for r in self.results if r["epoch"] == t.state.epoch][0]
        if first["mAP"] > self.best_map:
            self.best_map = first["mAP"]
            state = t.checkpoint()
            atomic_save({"model": state["model"], "meta": {**state["meta"], "metrics": first}},
                        t.output_dir / "model_best.pth")
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(self.results[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.results)
        atomic_write_text(t.output_dir / "eval.csv", text.getvalue())

    def after_epoch(self, t) -> None:
        if self.period > 0 and t.state.epoch % self.period == 0 and not t.finished:
            self._run(t)

    def after_train(self, t) -> None:
        if t.finished:
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

    def __init__(self, images_per_step: int, period: int = 20):
        self.images_per_step, self.period = images_per_step, period
        self.tb = None
        self._t0 = time.monotonic()
        self._images = 0

    def before_train(self, t) -> None:
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

    def after_step(self, t) -> None:
        self._images += self.images_per_step
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

    def after_train(self, t) -> None:
        if self.tb is not None:
            self.tb.close()


class ProgressBar(Hook):
    """A tqdm bar over all steps with epoch, losses, lr and images/s (rank 0 only)."""

    def __init__(self, images_per_step: int):
        self.images_per_step = images_per_step
        self.bar = None

    def before_train(self, t) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=t.max_iter, initial=t.state.iteration, disable=t.rank != 0, unit="it", dynamic_ncols=True)
        self.t0 = time.monotonic()
        self.start_iter = t.state.iteration

    def after_step(self, t) -> None:
        done = t.state.iteration - self.start_iter
        speed = done * self.images_per_step / max(time.monotonic() - self.t0, 1e-9)
        losses = " ".join(f"{k.removeprefix('loss_')} {v:.3f}" for k, v in t.state.last_losses.items())
        self.bar.set_postfix_str(f"ep {t.state.epoch} {losses} lr {t.optimizer.param_groups[0]['lr']:.2e} "
                                 f"{speed:.1f} img/s", refresh=False)
        self.bar.update(1)

    def after_train(self, t) -> None:
        if self.bar is not None:
            self.bar.close()
