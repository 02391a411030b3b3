"""Building blocks shared by backbones and heads: normalisation, IBN-a, SE, non-local, pooling and
margin-based classifier layers. Parameter names follow fast-reid so its checkpoints load."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose affine parameters can be frozen (BNNeck freezes its bias)."""

    def __init__(self, num_features: int, freeze_weight: bool = False, freeze_bias: bool = False):
        super().__init__(num_features)
        self.weight.requires_grad_(not freeze_weight)
        self.bias.requires_grad_(not freeze_bias)


def make_norm(kind: str, channels: int, **kwargs) -> nn.Module:
    """``BN`` (batch norm; ``syncBN`` becomes BN and is converted for DDP later) or ``GN``."""
    if kind in ("BN", "syncBN"):
        return BatchNorm(channels, **kwargs)
    if kind == "GN":
        return nn.GroupNorm(32, channels)
    raise ValueError(f"unknown normalisation {kind!r} (MODEL.BACKBONE.NORM / MODEL.HEADS.NORM): expected BN, syncBN or GN")


class IBN(nn.Module):
    """IBN-a: instance norm on the first half of the channels, batch norm on the rest."""

    def __init__(self, channels: int, norm: str = "BN"):
        super().__init__()
        self.half = channels // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = make_norm(norm, channels - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat([self.IN(a.contiguous()), self.BN(b.contiguous())], dim=1)


class SqueezeExcite(nn.Module):
    """Channel gating from globally pooled features (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


class NonLocal(nn.Module):
    """Embedded-Gaussian-free (dot product) non-local block with a residual connection.

    fast-reid uses one inner channel (a quirk its maintainers kept); the output BN starts at zero,
    so a fresh block is the identity."""

    def __init__(self, channels: int, norm: str = "BN", inner: int = 1):
        super().__init__()
        self.inner = inner
        self.g = nn.Conv2d(channels, inner, 1)
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.W = nn.Sequential(nn.Conv2d(inner, channels, 1), make_norm(norm, channels))
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        g = self.g(x).flatten(2).transpose(1, 2)
        theta = self.theta(x).flatten(2).transpose(1, 2)
        phi = self.phi(x).flatten(2)
        attn = theta @ phi / phi.shape[-1]
        y = (attn @ g).transpose(1, 2).reshape(n, self.inner, h, w)
        return x + self.W(y)


# ---- pooling: (N, C, H, W) -> (N, C, 1, 1) --------------------------------------------------

class MixStyle(nn.Module):
    """Domain-generalisation augmentation of feature maps (Zhou et al., ICLR 2021): in training, with
    probability ``p`` per batch, each image's per-channel mean and std are replaced by a Beta(alpha,
    alpha) mix of its own and those of another image of the batch, so the network sees new "camera
    styles" and learns to ignore them. The identity in eval mode; no parameters."""

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"MODEL.BACKBONE.MIXSTYLE.PROB must be in [0, 1], got {p}")
        if alpha <= 0:
            raise ValueError(f"MODEL.BACKBONE.MIXSTYLE.ALPHA must be > 0, got {alpha}")
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] < 2 or torch.rand(()) >= self.p:
            return x
        mu = x.mean(dim=(2, 3), keepdim=True).detach()
        sig = (x.var(dim=(2, 3), keepdim=True) + self.eps).sqrt().detach()
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((x.shape[0], 1, 1, 1)).to(x)
        perm = torch.randperm(x.shape[0], device=x.device)
        mu_mix = lam * mu + (1 - lam) * mu[perm]
        sig_mix = lam * sig + (1 - lam) * sig[perm]
        return (x - mu) / sig * sig_mix + mu_mix


class GlobalAvgPool(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


class GlobalMaxPool(nn.Module):
    def forward(self, x):
        return x.amax((2, 3), keepdim=True)


class AvgMaxPool(nn.Module):
    """Sum of average and max pooling."""

    def forward(self, x):
        return x.mean((2, 3), keepdim=True) + x.amax((2, 3), keepdim=True)


class GeneralizedMeanPool(nn.Module):
    """GeM: (mean of x^p)^(1/p) over positions; p=1 is average, large p approaches max."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = p
        self.eps = eps

    def forward(self, x):
        return x.clamp(min=self.eps).pow(self.p).mean((2, 3), keepdim=True).pow(1.0 / self.p)


class LearnableGeneralizedMeanPool(GeneralizedMeanPool):
    """GeM whose exponent is learned (stored as ``p``, as in fast-reid)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__(p, eps)
        self.p = nn.Parameter(torch.full((1,), float(p)))


class FlattenPool(nn.Module):
    """No pooling: the whole feature map flattened into channels (fixed input size only)."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1, 1, 1)


POOLING = {
    "GlobalAvgPool": GlobalAvgPool, "FastGlobalAvgPool": GlobalAvgPool, "GlobalMaxPool": GlobalMaxPool,
    "AdaptiveAvgMaxPool": AvgMaxPool, "GeneralizedMeanPooling": GeneralizedMeanPool,
    "GeneralizedMeanPoolingP": LearnableGeneralizedMeanPool, "Flatten": FlattenPool,
}


def make_pooling(name: str, gem_p: float = 3.0, key: str = "MODEL.HEADS.POOL_LAYER") -> nn.Module:
    """The pooling layer ``name`` (a fast-reid name); ``gem_p`` is the GeM exponent (GeM layers only)."""
    if name not in POOLING:
        raise ValueError(f"unknown pooling {name!r} ({key}): expected one of {', '.join(POOLING)}")
    if issubclass(POOLING[name], GeneralizedMeanPool):
        if not gem_p > 0:
            raise ValueError(f"MODEL.HEADS.GEM_P must be > 0, got {gem_p}")
        return POOLING[name](float(gem_p))
    return POOLING[name]()


# ---- classifier layers: logits (cosines for the margin ones) and targets -> scaled logits ------

class LinearLogits(nn.Module):
    """Plain softmax classifier: logits times ``scale``."""

    cosine = False

    def __init__(self, scale: float = 1.0, margin: float = 0.0):
        super().__init__()
        self.s = scale
        self.m = margin

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return logits * self.s


class CosFaceLogits(LinearLogits):
    """CosFace / AM-softmax: subtract ``margin`` from the target-class cosine."""

    cosine = True

    def forward(self, logits, targets):
        return (logits - self.m * F.one_hot(targets, logits.shape[1]).to(logits.dtype)) * self.s


class ArcFaceLogits(LinearLogits):
    """ArcFace: add ``margin`` to the target-class angle."""

    cosine = True

    def forward(self, logits, targets):
        theta = torch.acos(logits.clamp(-1 + 1e-7, 1 - 1e-7))
        theta = theta + self.m * F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        return torch.cos(theta) * self.s


class CircleLogits(LinearLogits):
    """Circle loss in softmax form (Sun et al. 2020): re-weighted positive and negative cosines."""

    cosine = True

    def forward(self, logits, targets):
        alpha_p = (1 + self.m - logits.detach()).clamp_min(0)
        alpha_n = (logits.detach() + self.m).clamp_min(0)
        onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
        pos = alpha_p * (logits - (1 - self.m))
        neg = alpha_n * (logits - self.m)
        return (onehot * pos + (1 - onehot) * neg) * self.s


CLASSIFIERS = {"Linear": LinearLogits, "CosSoftmax": CosFaceLogits, "ArcSoftmax": ArcFaceLogits,
               "CircleSoftmax": CircleLogits}


def make_classifier(name: str, scale: float, margin: float) -> LinearLogits:
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r} (MODEL.HEADS.CLS_LAYER): expected one of {', '.join(CLASSIFIERS)}")
    return CLASSIFIERS[name](scale, margin)
