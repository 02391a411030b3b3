"""Folding eval-mode BatchNorm into the convolution before it, for faster CPU inference.

In eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution
with scaled weights and a bias; folding removes a full pass over every activation map. Which
BatchNorm follows which convolution is found by running the model once with hooks (a BN whose
input is exactly a convolution's output), so it works for any backbone built from ``nn.Conv2d``
and ``nn.BatchNorm2d`` (timm's ``BatchNormAct2d`` keeps its activation). The folded copy is
checked against the original on the example input and discarded if they differ.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def _conv_bn_pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Conv2d, str, nn.BatchNorm2d]]:
    names = {m: n for n, m in model.named_modules()}
    produced: dict[int, tuple[nn.Conv2d, torch.Tensor]] = {}
    pairs = []
    seen_convs: set[int] = set()

    def after_conv(module, _inputs, output):
        produced[id(output)] = (module, output)

    def before_bn(module, inputs):
        x = inputs[0]
        hit = produced.get(id(x))
        if hit is not None and hit[1] is x and id(hit[0]) not in seen_convs:
            seen_convs.add(id(hit[0]))
            pairs.append((names[hit[0]], hit[0], names[module], module))

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(after_conv))
        elif isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
            handles.append(m.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()
    calls: dict[int, int] = {}
    for _, conv, _, bn in pairs:  # a module used twice cannot be folded for one of its uses only
        calls[id(bn)] = calls.get(id(bn), 0) + 1
    return [p for p in pairs if calls[id(p[3])] == 1]


def _set_child(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, new)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a norm layer once its affine map moved into the convolution."""
    act = getattr(bn, "act", None)
    drop = getattr(bn, "drop", None)
    rest = [m for m in (drop, act) if isinstance(m, nn.Module) and not isinstance(m, nn.Identity)]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorm(model: nn.Module, example: torch.Tensor, rtol: float = 1e-3) -> nn.Module:
    """An eval-mode copy of ``model`` with every conv -> BatchNorm pair folded into the conv; the
    original model when nothing folds or the copy's output differs (relative error > ``rtol``)."""
    folded = copy.deepcopy(model).eval()
    pairs = _conv_bn_pairs(folded, example)
    if not pairs:
        return model
    with torch.no_grad():
        for _, conv, bn_name, bn in pairs:
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
            bias = conv.bias if conv.bias is not None else torch.zeros_like(shift)
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bias * scale + shift)
            _set_child(folded, bn_name, _after_norm(bn))
        want = model.eval()(example)
        got = folded(example)
    error = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
    if error > rtol:
        logger.warning("BatchNorm folding changed the output (relative error %.2e): keeping the model as is", error)
        return model
    logger.debug("folded %d BatchNorm layers into their convolutions (relative error %.1e)", len(pairs), error)
    return folded
