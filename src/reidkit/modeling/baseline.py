"""The ``Baseline`` meta-architecture and ``build_model(cfg)``.

Images go in as float RGB on the 0-255 scale; the model subtracts ``pixel_mean`` and divides by
``pixel_std`` itself (buffers, saved with the weights), as fast-reid's does. In eval mode the
output is the embedding; in training mode, the weighted losses named in MODEL.LOSSES.NAME.
"""

from __future__ import annotations

import torch
from torch import nn

from . import backbones  # noqa: F401  (registers the backbones)
from . import heads  # noqa: F401
from .losses import cross_entropy, pairwise_circle, pairwise_cosface, triplet
from .registry import BACKBONES, HEADS, META_ARCHITECTURES

LOSS_NAMES = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface")


class Baseline(nn.Module):
    def __init__(self, backbone: nn.Module, heads: nn.Module, pixel_mean, pixel_std, loss_cfg=None):
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.loss_cfg = loss_cfg
        if loss_cfg is not None:
            unknown = [n for n in loss_cfg.NAME if n not in LOSS_NAMES]
            if unknown:
                raise ValueError(f"unknown loss {unknown[0]!r} (MODEL.LOSSES.NAME): expected any of {', '.join(LOSS_NAMES)}")

    @property
    def embedding_dim(self) -> int:
        return self.heads.embedding_dim

    def forward(self, images: torch.Tensor, targets: torch.Tensor | None = None):
        x = (images - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)
        if not self.training:
            return self.heads(features)
        outputs = self.heads(features, targets)
        return self.losses(outputs, targets)

    def losses(self, outputs: dict, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.loss_cfg
        names = c.NAME
        out = {}
        if "CrossEntropyLoss" in names:
            out["loss_cls"] = cross_entropy(outputs["cls_outputs"], targets, c.CE.EPSILON) * c.CE.SCALE
        if "TripletLoss" in names:
            out["loss_triplet"] = triplet(outputs["features"], targets, c.TRI.MARGIN, c.TRI.NORM_FEAT,
                                          c.TRI.HARD_MINING) * c.TRI.SCALE
        if "CircleLoss" in names:
            out["loss_circle"] = pairwise_circle(outputs["features"], targets, c.CIRCLE.MARGIN,
                                                 c.CIRCLE.GAMMA) * c.CIRCLE.SCALE
        if "Cosface" in names:
            out["loss_cosface"] = pairwise_cosface(outputs["features"], targets, c.COSFACE.MARGIN,
                                                   c.COSFACE.GAMMA) * c.COSFACE.SCALE
        return out


@META_ARCHITECTURES.register("Baseline")
def build_baseline(cfg) -> Baseline:
    backbone = BACKBONES.get(cfg.MODEL.BACKBONE.NAME)(cfg)
    head = HEADS.get(cfg.MODEL.HEADS.NAME)(cfg, backbone.out_channels)
    return Baseline(backbone, head, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.MODEL.LOSSES)


def build_model(cfg) -> Baseline:
    """The model a config describes (weights initialised; MODEL.WEIGHTS is loaded by the caller)."""
    return META_ARCHITECTURES.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
