"""Optimizer and learning-rate schedule from fast-reid's SOLVER.* keys.

The schedule is a pure function of the iteration, so a resumed run needs no scheduler state:
linear (or constant) warm-up over WARMUP_ITERS iterations, then MultiStepLR (STEPS in epochs) or
cosine annealing to ETA_MIN_LR after DELAY_EPOCHS.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d, nn.LayerNorm)


def param_groups(cfg, model: nn.Module) -> list[dict]:
    """One group per parameter with its lr and weight decay (biases, norms and heads differ)."""
    s = cfg.SOLVER
    groups = []
    seen = set()
    for mod_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            lr, wd = s.BASE_LR, s.WEIGHT_DECAY
            if mod_name.startswith("heads"):
                lr *= s.HEADS_LR_FACTOR
            if name == "bias":
                lr *= s.BIAS_LR_FACTOR
                wd = s.WEIGHT_DECAY_BIAS
            if isinstance(module, NORM_TYPES):
                wd = s.WEIGHT_DECAY_NORM
            groups.append({"params": [p], "lr": lr, "initial_lr": lr, "weight_decay": wd,
                           "name": f"{mod_name}.{name}" if mod_name else name})
    return groups


def build_optimizer(cfg, model: nn.Module) -> torch.optim.Optimizer:
    s = cfg.SOLVER
    groups = param_groups(cfg, model)
    if s.OPT == "Adam":
        return torch.optim.Adam(groups, lr=s.BASE_LR)
    if s.OPT == "AdamW":
        return torch.optim.AdamW(groups, lr=s.BASE_LR)
    if s.OPT == "SGD":
        return torch.optim.SGD(groups, lr=s.BASE_LR, momentum=s.MOMENTUM, nesterov=s.NESTEROV)
    raise ValueError(f"unknown optimizer {s.OPT!r} (SOLVER.OPT): expected Adam, AdamW or SGD")


def lr_factor(cfg, iteration: int, iters_per_epoch: int) -> float:
    """Multiplier of each group's initial lr at ``iteration`` (0-based)."""
    s = cfg.SOLVER
    epoch = iteration // iters_per_epoch
    if s.SCHED == "MultiStepLR":
        factor = s.GAMMA ** sum(epoch >= step for step in s.STEPS)
    elif s.SCHED == "CosineAnnealingLR":
        if epoch < s.DELAY_EPOCHS:
            factor = 1.0
        else:
            span = max(1, s.MAX_EPOCH - s.DELAY_EPOCHS)
            t = min(1.0, (epoch - s.DELAY_EPOCHS) / span)
            floor = s.ETA_MIN_LR / s.BASE_LR
            factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
    else:
        raise ValueError(f"unknown schedule {s.SCHED!r} (SOLVER.SCHED): expected MultiStepLR or CosineAnnealingLR")
    if iteration < s.WARMUP_ITERS:
        if s.WARMUP_METHOD == "linear":
            alpha = iteration / s.WARMUP_ITERS
            factor *= s.WARMUP_FACTOR * (1 - alpha) + alpha
        elif s.WARMUP_METHOD == "constant":
            factor *= s.WARMUP_FACTOR
        else:
            raise ValueError(f"unknown warm-up {s.WARMUP_METHOD!r} (SOLVER.WARMUP_METHOD): expected linear or constant")
    return factor


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
