"""The model's extension points: backbones, heads, meta-architectures and losses."""

from __future__ import annotations

from ..registry import Registry

BACKBONES: Registry = Registry(
    "backbone", "build(cfg) -> nn.Module mapping (B, 3, H, W) images to (B, C, h, w) maps, with an "
    "`out_channels` attribute", where="MODEL.BACKBONE.NAME")
HEADS: Registry = Registry(
    "head", "build(cfg, in_channels) -> nn.Module: eval mode, maps -> (B, D) embeddings; training mode, "
    "a dict with `features` (and `cls_outputs` when it classifies); `embedding_dim` attribute",
    where="MODEL.HEADS.NAME")
META_ARCHITECTURES: Registry = Registry(
    "meta-architecture", "build(cfg) -> nn.Module: eval mode, 0-255 RGB images -> embeddings; training "
    "mode, (images, targets) -> dict of named loss tensors", where="MODEL.META_ARCHITECTURE")
LOSSES: Registry = Registry(
    "loss", "fn(head_outputs, targets, cfg.MODEL.LOSSES) -> scalar tensor, already weighted by its "
    "SCALE; declares `output` (the name it is logged under) and `needs` (the head outputs it reads)",
    where="MODEL.LOSSES.NAME")
