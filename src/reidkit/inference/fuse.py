"""Inference-only rewrites of a model for a fixed input size: faster on CPU, same outputs.

Static "same" padding: timm's TF-ported networks (``tf_efficientnet_lite*``) pad each strided
convolution by an amount computed from the input size at run time; exported to ONNX that is a
chain of Shape/Gather/Ceil ops feeding a Pad, which onnxruntime cannot fold into the convolution
while the batch axis is dynamic. For a known input size the padding is a constant, so each such
convolution becomes a fixed zero-pad and a plain convolution (one convolution when symmetric).

BatchNorm folding: in eval mode a BatchNorm is a per-channel affine map, so ``bn(conv(x))`` equals one convolution
with scaled weights and a bias; folding removes a full pass over every activation map. Which
BatchNorm follows which convolution is found by running the model once with hooks (a BN whose
input is exactly a convolution's output), so it works for any backbone built from ``nn.Conv2d``
and ``nn.BatchNorm2d`` (timm's ``BatchNormAct2d`` keeps its activation). The folded copy is
checked against the original on the example input and discarded if they differ.
"""

from __future__ import annotations

import copy
import logging
import math

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


def _dynamic_same_conv_types() -> tuple[type, ...]:
    try:
        from timm.layers import Conv2dSame
    except ImportError:  # timm absent: nothing of its kind in the model
        return ()
    return (Conv2dSame,)


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF 'SAME' padding of one axis: (before, after), the extra pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def static_same_padding(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose run-time "same"-padded convolutions pad by the constant amount
    ``example``'s size needs (valid for inputs of that height and width only); ``model`` itself
    when it has none. The copy is checked against the original on ``example``."""
    kinds = _dynamic_same_conv_types()
    if not kinds or not any(isinstance(m, kinds) for m in model.modules()):
        return model
    static = copy.deepcopy(model).eval()
    names = {m: n for n, m in static.named_modules()}
    sizes: dict[str, tuple[int, int]] = {}

    def record(module, inputs):
        sizes[names[module]] = tuple(inputs[0].shape[-2:])

    handles = [m.register_forward_pre_hook(record) for m in static.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            want = static(example)
    finally:
        for h in handles:
            h.remove()
    for name, (h, w) in sizes.items():
        old = static.get_submodule(name)
        top, bottom = _same_pad(h, old.kernel_size[0], old.stride[0], old.dilation[0])
        left, right = _same_pad(w, old.kernel_size[1], old.stride[1], old.dilation[1])
        symmetric = top == bottom and left == right
        conv = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride,
                         (top, left) if symmetric else 0, old.dilation, old.groups, old.bias is not None)
        conv.weight, conv.bias = old.weight, old.bias
        _set_child(static, name, conv if symmetric else nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), conv))
    with torch.no_grad():
        got = static(example)
    if not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise AssertionError("static padding changed the model's output")  # a bug here, not the user's
    return static


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
