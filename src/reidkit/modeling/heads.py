"""Embedding head: pooling -> optional 1x1 reduction -> BNNeck -> (training) classifier logits.

Parameter names follow fast-reid's ``EmbeddingHead`` (``pool_layer``, ``bottleneck.0``, ``weight``)
so its checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import make_classifier, make_norm, make_pooling
from .registry import HEADS


#: Poolings a model may switch to at test time: no parameters, one value per channel.
TEST_POOLINGS = ("GlobalAvgPool", "FastGlobalAvgPool", "GlobalMaxPool", "AdaptiveAvgMaxPool", "GeneralizedMeanPooling")


class EmbeddingHead(nn.Module):
    """In eval mode returns the embedding (after the BNNeck, or the pooled feature before it when
    ``test_feat="before"``, pooled by ``test_pool`` if given); in training returns a dict with
    ``cls_outputs`` (margin-adjusted, scaled logits), ``pred_class_logits`` and ``features``
    (before or after the neck, as ``neck_feat`` says) for the metric losses."""

    def __init__(self, feat_dim: int, num_classes: int, embedding_dim: int = 0, neck_feat: str = "before",
                 pool: str = "GlobalAvgPool", cls_layer: str = "Linear", scale: float = 1.0, margin: float = 0.0,
                 with_bnneck: bool = True, norm: str = "BN", gem_p: float = 3.0, test_feat: str = "after",
                 test_pool: str = ""):
        super().__init__()
        if neck_feat not in ("before", "after"):
            raise ValueError(f"MODEL.HEADS.NECK_FEAT must be 'before' or 'after', got {neck_feat!r}")
        if test_feat not in ("before", "after"):
            raise ValueError(f"MODEL.HEADS.TEST_FEAT must be 'before' or 'after', got {test_feat!r}")
        if test_pool and test_pool not in TEST_POOLINGS:
            raise ValueError(f"MODEL.HEADS.TEST_POOL_LAYER {test_pool!r} cannot replace the training pooling at test "
                             f"time: expected '' (keep it) or one of {', '.join(TEST_POOLINGS)}")
        self.pool_layer = make_pooling(pool, gem_p)
        self.test_pool_layer = make_pooling(test_pool, gem_p, "MODEL.HEADS.TEST_POOL_LAYER") if test_pool else None
        self.neck_feat = neck_feat
        self.test_feat = test_feat
        pooled_dim = feat_dim
        neck: list[nn.Module] = []
        if embedding_dim > 0:
            neck.append(nn.Conv2d(feat_dim, embedding_dim, 1, bias=False))
            feat_dim = embedding_dim
        if with_bnneck:
            neck.append(make_norm(norm, feat_dim, freeze_bias=True))
        self.bottleneck = nn.Sequential(*neck)
        self.embedding_dim = pooled_dim if test_feat == "before" else feat_dim
        self.cls_layer = make_classifier(cls_layer, scale, margin)
        self.weight = nn.Parameter(torch.empty(max(num_classes, 1), feat_dim))
        nn.init.normal_(self.weight, std=0.01)
        for m in self.bottleneck.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor, targets: torch.Tensor | None = None):
        if not self.training:
            pooled = (self.test_pool_layer or self.pool_layer)(features)
            return pooled[..., 0, 0] if self.test_feat == "before" else self.bottleneck(pooled)[..., 0, 0]
        pooled = self.pool_layer(features)
        neck = self.bottleneck(pooled)[..., 0, 0]
        if targets is None:
            raise ValueError("the head needs targets (identity labels) in training mode")
        if self.cls_layer.cosine:
            logits = F.linear(F.normalize(neck), F.normalize(self.weight))
        else:
            logits = F.linear(neck, self.weight)
        return {
            "cls_outputs": self.cls_layer(logits, targets),
            "pred_class_logits": logits * self.cls_layer.s,
            "features": pooled[..., 0, 0] if self.neck_feat == "before" else neck,
        }


@HEADS.register("EmbeddingHead")
def build_embedding_head(cfg, feat_dim: int) -> EmbeddingHead:
    h = cfg.MODEL.HEADS
    return EmbeddingHead(feat_dim=feat_dim, num_classes=h.NUM_CLASSES, embedding_dim=h.EMBEDDING_DIM,
                         neck_feat=h.NECK_FEAT, pool=h.POOL_LAYER, cls_layer=h.CLS_LAYER, scale=h.SCALE,
                         margin=h.MARGIN, with_bnneck=h.WITH_BNNECK, norm=h.NORM, gem_p=h.GEM_P,
                         test_feat=h.TEST_FEAT, test_pool=h.TEST_POOL_LAYER)
