"""OSNet (Zhou et al., ICCV 2019): omni-scale residual blocks, a lightweight ReID backbone.

Each block reduces channels 4x, runs four streams of 1 to 4 stacked "lite" 3x3 convolutions
(pointwise then depthwise) so that each sees a different receptive field, weights every stream
with a channel gate shared between streams, sums them and expands back. Random initialisation:
no ImageNet weights are available offline.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BACKBONES

WIDTHS = {"x1_0": (64, 256, 384, 512), "x0_75": (48, 192, 288, 384), "x0_5": (32, 128, 192, 256),
          "x0_25": (16, 64, 96, 128)}


def conv_bn_relu(cin: int, cout: int, k: int = 1, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LiteConv(nn.Module):
    """1x1 linear projection, then 3x3 depthwise convolution, BN, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.dw = nn.Conv2d(cout, cout, 3, 1, 1, groups=cout, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.dw(self.pw(x))))


class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * w


class OmniScaleBlock(nn.Module):
    def __init__(self, cin: int, cout: int, streams: int = 4):
        super().__init__()
        mid = cout // 4
        self.reduce = conv_bn_relu(cin, mid)
        self.streams = nn.ModuleList(
            nn.Sequential(*[LiteConv(mid, mid) for _ in range(t)]) for t in range(1, streams + 1))
        self.gate = ChannelGate(mid)
        self.expand = conv_bn_relu(mid, cout, relu=False)
        self.shortcut = conv_bn_relu(cin, cout, relu=False) if cin != cout else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        y = self.reduce(x)
        y = sum(self.gate(stream(y)) for stream in self.streams)
        return self.relu(self.expand(y) + self.shortcut(x))


class OSNet(nn.Module):
    def __init__(self, width: str = "x1_0", blocks=(2, 2, 2)):
        super().__init__()
        if width not in WIDTHS:
            raise ValueError(f"unknown OSNet width {width!r} (MODEL.BACKBONE.DEPTH): expected one of {', '.join(WIDTHS)}")
        c = WIDTHS[width]
        self.conv1 = conv_bn_relu(3, c[0], 7, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        cin = c[0]
        for i, (n, cout) in enumerate(zip(blocks, c[1:])):
            layers = [OmniScaleBlock(cin if j == 0 else cout, cout) for j in range(n)]
            if i < len(blocks) - 1:  # transition: 1x1 conv and 2x2 average pooling
                layers += [conv_bn_relu(cout, cout), nn.AvgPool2d(2, 2)]
            stages.append(nn.Sequential(*layers))
            cin = cout
        self.conv2, self.conv3, self.conv4 = stages
        self.conv5 = conv_bn_relu(c[3], c[3])
        self.out_channels = c[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        return self.conv5(self.conv4(self.conv3(self.conv2(x))))


@BACKBONES.register("build_osnet_backbone")
def build_osnet_backbone(cfg) -> OSNet:
    b = cfg.MODEL.BACKBONE
    depth = {"1x": "x1_0", "x1_0": "x1_0", "0.75x": "x0_75", "0.5x": "x0_5", "0.25x": "x0_25"}.get(b.DEPTH, b.DEPTH)
    if b.PRETRAIN and not b.PRETRAIN_PATH:
        import logging

        logging.getLogger(__name__).warning("no offline ImageNet weights for OSNet: starting from random weights")
    model = OSNet(depth)
    if b.PRETRAIN and b.PRETRAIN_PATH:
        from .resnet import load_pretrained

        load_pretrained(model, b.PRETRAIN_PATH)
    return model
