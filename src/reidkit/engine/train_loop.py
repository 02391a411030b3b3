"""The training loop, knowing nothing of data, models or optimisers: epochs of steps, and hooks.

``TrainerBase.train()`` calls, in this order:

* ``before_train`` of every hook;
* per epoch, per batch: ``before_step``, the subclass's ``run_step(batch)``, ``after_step``;
* ``after_epoch`` at the end of each epoch;
* ``after_train``, always, also when a step or a hook raised (a hook that writes final results
  checks ``trainer.finished``).

Hooks run in the order they were given. A hook's ``state_dict()`` is saved with the trainer's
checkpoint and handed back to ``load_state_dict`` on resume, so a hook carries its own state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Optional, Sequence


@dataclass
class TrainState:
    """Where training is: epochs done, steps done in the current epoch, steps done in all."""

    epoch: int = 0
    step_in_epoch: int = 0
    iteration: int = 0
    skipped_images: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainState":
        """A state saved by this or an earlier reidkit (keys it no longer has are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class Hook:
    """Override any of these; each gets the trainer (model, optimizer, state, output folder)."""

    def before_train(self, trainer: "TrainerBase") -> None: ...
    def before_step(self, trainer: "TrainerBase") -> None: ...
    def after_step(self, trainer: "TrainerBase") -> None: ...
    def after_epoch(self, trainer: "TrainerBase") -> None: ...
    def after_train(self, trainer: "TrainerBase") -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs of this hook (saved in the checkpoint)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` gave."""


class TrainerBase:
    """Runs ``max_epoch`` epochs of ``epoch_batches`` through ``run_step``, calling the hooks."""

    def __init__(self, max_epoch: int, hooks: Optional[Sequence[Hook]] = None):
        self.max_epoch = int(max_epoch)
        self.hooks: list[Hook] = list(hooks or [])
        self.state = TrainState()

    @property
    def finished(self) -> bool:
        """Whether every epoch ran (False while training, and after a run that stopped early)."""
        return self.state.epoch >= self.max_epoch

    def epoch_batches(self, epoch: int, start: int) -> Iterable[Any]:
        """The batches of ``epoch`` from step ``start`` on (None for a batch with nothing to learn from)."""
        raise NotImplementedError

    def run_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step; the losses, as floats."""
        raise NotImplementedError

    def end_of_training(self) -> None:
        """What the subclass does when the last epoch is done, before the hooks' ``after_train``."""

    def _call(self, event: str) -> None:
        for hook in self.hooks:
            getattr(hook, event)(self)

    def train(self) -> TrainState:
        self._call("before_train")
        try:
            while self.state.epoch < self.max_epoch:
                for batch in self.epoch_batches(self.state.epoch, self.state.step_in_epoch):
                    self._call("before_step")
                    if batch is not None:
                        self.state.last_losses = self.run_step(batch)
                    self.state.iteration += 1
                    self.state.step_in_epoch += 1
                    self._call("after_step")
                self.state.epoch += 1
                self.state.step_in_epoch = 0
                self._call("after_epoch")
            self.end_of_training()
        finally:
            self._call("after_train")
        return self.state

    # -- what a checkpoint holds of the loop --------------------------------------------------
    def loop_state_dict(self) -> dict[str, Any]:
        return {"trainer": vars(self.state).copy(),
                "hooks": {type(h).__name__: h.state_dict() for h in self.hooks if h.state_dict()}}

    def load_loop_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.state = TrainState.from_dict(ckpt["trainer"])
        saved = ckpt.get("hooks") or {}
        for hook in self.hooks:
            if type(hook).__name__ in saved:
                hook.load_state_dict(saved[type(hook).__name__])
