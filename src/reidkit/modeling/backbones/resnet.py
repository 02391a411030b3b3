"""ResNet 18/34/50/101 for ReID with fast-reid's layout and parameter names.

Differences from torchvision's that matter for compatibility: the stem max-pool has no padding and
rounds up (``ceil_mode``), ``LAST_STRIDE`` 1 keeps layer4 at 1/16 resolution, IBN-a splits ``bn1``
of the blocks in layer1-3, and non-local blocks sit after the last blocks of layer2 and layer3
(``NL_2``, ``NL_3``). torchvision ImageNet checkpoints load into it (their keys are the same).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch import nn

from ..layers import IBN, NonLocal, SqueezeExcite, make_norm
from ..registry import BACKBONES

logger = logging.getLogger(__name__)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, norm="BN", ibn=False, se=False, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = IBN(planes, norm) if ibn else make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(planes) if se else nn.Identity()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, norm="BN", ibn=False, se=False, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = IBN(planes, norm) if ibn else make_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = make_norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = make_norm(norm, planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.se = SqueezeExcite(planes * 4) if se else nn.Identity()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


DEPTHS = {
    "18x": (BasicBlock, [2, 2, 2, 2], [0, 0, 0, 0]),
    "34x": (BasicBlock, [3, 4, 6, 3], [0, 0, 0, 0]),
    "50x": (Bottleneck, [3, 4, 6, 3], [0, 2, 3, 0]),
    "101x": (Bottleneck, [3, 4, 23, 3], [0, 2, 9, 0]),
}


class ResNet(nn.Module):
    def __init__(self, depth: str = "50x", last_stride: int = 1, norm: str = "BN", ibn: bool = False,
                 se: bool = False, non_local: bool = False):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"unknown ResNet depth {depth!r} (MODEL.BACKBONE.DEPTH): expected one of {', '.join(DEPTHS)}")
        block, layers, nl_counts = DEPTHS[depth]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
        self.layer1 = self._stage(block, 64, layers[0], 1, norm, ibn, se)
        self.layer2 = self._stage(block, 128, layers[1], 2, norm, ibn, se)
        self.layer3 = self._stage(block, 256, layers[2], 2, norm, ibn, se)
        self.layer4 = self._stage(block, 512, layers[3], last_stride, norm, False, se)
        self.out_channels = 512 * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
        # Non-local blocks after the last ``count`` blocks of a stage.
        self.nl_after: dict[int, list[int]] = {}
        if non_local:
            for stage, (count, channels) in enumerate(zip(nl_counts, (256, 512, 1024, 2048)), 1):
                if count:
                    setattr(self, f"NL_{stage}", nn.ModuleList(NonLocal(channels, norm) for _ in range(count)))
                    self.nl_after[stage] = sorted(layers[stage - 1] - 1 - i for i in range(count))

    def _stage(self, block, planes, blocks, stride, norm, ibn, se):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       make_norm(norm, planes * block.expansion))
        layers = [block(self.inplanes, planes, norm, ibn, se, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, norm, ibn, se) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in range(1, 5):
            positions = self.nl_after.get(stage, [])
            nl_blocks = getattr(self, f"NL_{stage}", None)
            for i, blk in enumerate(getattr(self, f"layer{stage}")):
                x = blk(x)
                if i in positions:
                    x = nl_blocks[positions.index(i)](x)
        return x


def key_table(missing: list[str], unexpected: list[str], limit: int = 6) -> str:
    """A short two-column text table of missing and unexpected state-dict keys."""
    rows = max(min(len(missing), limit), min(len(unexpected), limit))
    width = max([len("missing (kept initialisation)"), *(len(k) for k in missing[:limit])])
    lines = [f"  {'missing (kept initialisation)':<{width}}  unexpected (ignored)"]
    for i in range(rows):
        left = missing[i] if i < len(missing) and i < limit else ""
        right = unexpected[i] if i < len(unexpected) and i < limit else ""
        lines.append(f"  {left:<{width}}  {right}")
    if len(missing) > limit or len(unexpected) > limit:
        lines.append(f"  ... {len(missing)} missing, {len(unexpected)} unexpected in all")
    return "\n".join(lines)


def load_pretrained(model: nn.Module, path: str | Path) -> None:
    """Copy ImageNet weights from a local checkpoint (torchvision's ``resnet50-*.pth`` or fast-reid/IBN
    naming). Missing and unexpected keys are logged as a short table; a key whose shape differs
    is an error naming it (the file is for another depth or variant)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"MODEL.BACKBONE.PRETRAIN_PATH: no file at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model", state.get("state_dict", state))
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    own = model.state_dict()
    mismatched = [f"{k} {tuple(v.shape)} in the file vs {tuple(own[k].shape)} in the model"
                  for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise ValueError(f"MODEL.BACKBONE.PRETRAIN_PATH {path}: shapes differ for {mismatched[0]}"
                         + (f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""))
    usable = {k: v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(usable))
    unexpected = sorted(set(state) - set(own))
    model.load_state_dict(usable, strict=False)
    logger.info("loaded %d tensors from %s", len(usable), path)
    if missing or unexpected:
        logger.warning("%s: %d keys missing, %d unexpected\n%s", path, len(missing), len(unexpected),
                       key_table(missing, unexpected))


@BACKBONES.register("build_resnet_backbone")
def build_resnet_backbone(cfg) -> ResNet:
    b = cfg.MODEL.BACKBONE
    model = ResNet(b.DEPTH, b.LAST_STRIDE, b.NORM, b.WITH_IBN, b.WITH_SE, b.WITH_NL)
    if b.PRETRAIN:
        if b.PRETRAIN_PATH:
            load_pretrained(model, b.PRETRAIN_PATH)
        else:
            logger.warning("MODEL.BACKBONE.PRETRAIN is True but MODEL.BACKBONE.PRETRAIN_PATH is empty: no ImageNet "
                           "weights are downloaded; the ResNet (DEPTH %s) starts from random weights. Point PRETRAIN_PATH at a "
                           "local torchvision or IBN-Net checkpoint to start from ImageNet.", b.DEPTH)
    return model
