"""The ``Baseline`` meta-architecture and ``build_model(cfg)``.

Images go in as float RGB on the 0-255 scale; the model subtracts ``pixel_mean`` and divides by
``pixel_std`` itself (buffers, saved with the weights), as fast-reid's does. In eval mode the
output is the embedding; in training mode, the weighted losses named in MODEL.LOSSES.NAME.
"""

from __future__ import annotations

import torch
from torch import nn

from ..model_card import CLASSIFIER_KEY
from . import backbones  # noqa: F401  (registers the backbones)
from . import heads  # noqa: F401
from . import losses  # noqa: F401  (registers the losses)
from .registry import BACKBONES, HEADS, LOSSES, META_ARCHITECTURES


class Baseline(nn.Module):
    #: The classifier's state-dict key (the head's identity classifier), which shipped weights drop.
    classifier_key = CLASSIFIER_KEY

    def __init__(self, backbone: nn.Module, heads: nn.Module, pixel_mean, pixel_std, loss_cfg=None):
        super().__init__()
        self.backbone = backbone
        self.heads = heads
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(1, -1, 1, 1), False)
        self.loss_cfg = loss_cfg
        # In registration order, whatever order MODEL.LOSSES.NAME lists them in; unknown names fail here.
        named = set() if loss_cfg is None else {LOSSES.entry(n).name for n in loss_cfg.NAME}
        self.loss_names = tuple(name for name in LOSSES if name in named)

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
        """The weighted losses of MODEL.LOSSES.NAME, each under the name its registration declares."""
        return {LOSSES.info(name)["output"]: LOSSES.get(name)(outputs, targets, self.loss_cfg)
                for name in self.loss_names}


@META_ARCHITECTURES.register("Baseline")
def build_baseline(cfg) -> Baseline:
    backbone = BACKBONES.get(cfg.MODEL.BACKBONE.NAME)(cfg)
    head = HEADS.get(cfg.MODEL.HEADS.NAME)(cfg, backbone.out_channels)
    return Baseline(backbone, head, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, cfg.MODEL.LOSSES)


def build_model(cfg) -> Baseline:
    """The model a config describes (weights initialised; MODEL.WEIGHTS is loaded by the caller)."""
    return META_ARCHITECTURES.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
