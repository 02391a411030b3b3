"""ReID losses: label-smoothed cross-entropy, triplet with batch-hard mining, pairwise circle and
CosFace. Each takes a batch's outputs and identity labels and returns a scalar."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import LOSSES


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.0) -> torch.Tensor:
    """Cross-entropy against targets smoothed by ``epsilon`` spread over the other classes."""
    log_probs = F.log_softmax(logits, dim=1)
    n = logits.shape[1]
    with torch.no_grad():
        smooth = torch.full_like(log_probs, epsilon / max(n - 1, 1))
        smooth.scatter_(1, targets[:, None], 1.0 - epsilon)
    return -(smooth * log_probs).sum(dim=1).mean()


def _pairwise(features: torch.Tensor, normalize: bool) -> torch.Tensor:
    if normalize:
        features = F.normalize(features, dim=1)
        return (2 - 2 * features @ features.T).clamp_min(1e-12).sqrt()
    sq = (features * features).sum(1)
    return (sq[:, None] + sq[None, :] - 2 * features @ features.T).clamp_min(1e-12).sqrt()


def triplet(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.3, normalize: bool = False,
            hard_mining: bool = True) -> torch.Tensor:
    """Triplet loss on Euclidean distances. With ``hard_mining`` each anchor takes its farthest
    positive and nearest negative in the batch; otherwise softmax-weighted positives/negatives.
    ``margin`` 0 means the soft margin ``log(1 + exp(d_ap - d_an))``."""
    dist = _pairwise(features, normalize)
    same = targets[:, None] == targets[None, :]
    diff = ~same
    if hard_mining:
        d_ap = torch.where(same, dist, torch.full_like(dist, -1e9)).amax(1)
        d_an = torch.where(diff, dist, torch.full_like(dist, 1e9)).amin(1)
    else:
        w_ap = torch.softmax(torch.where(same, dist, torch.full_like(dist, -1e9)), dim=1)
        w_an = torch.softmax(torch.where(diff, -dist, torch.full_like(dist, -1e9)), dim=1)
        d_ap = (w_ap * dist).sum(1)
        d_an = (w_an * dist).sum(1)
    valid = diff.any(1)  # anchors with at least one negative in the batch
    if not valid.any():
        return features.sum() * 0.0
    d_ap, d_an = d_ap[valid], d_an[valid]
    if margin > 0:
        return F.relu(d_ap - d_an + margin).mean()
    return F.softplus(d_ap - d_an).mean()


def pairwise_circle(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.25,
                    gamma: float = 128.0) -> torch.Tensor:
    """Circle loss over all pairs in the batch (Sun et al. 2020), on cosine similarities."""
    f = F.normalize(features, dim=1)
    sim = f @ f.T
    same = (targets[:, None] == targets[None, :]).float()
    eye = torch.eye(len(targets), device=f.device)
    pos_mask = same - eye
    neg_mask = 1 - same
    alpha_p = (-sim.detach() + 1 + margin).clamp_min(0)
    alpha_n = (sim.detach() + margin).clamp_min(0)
    logit_p = -gamma * alpha_p * (sim - (1 - margin))
    logit_n = gamma * alpha_n * (sim - margin)
    logit_p = logit_p - (1 - pos_mask) * 1e12
    logit_n = logit_n - (1 - neg_mask) * 1e12
    return F.softplus(torch.logsumexp(logit_p, 1) + torch.logsumexp(logit_n, 1)).mean()


def pairwise_cosface(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.25,
                     gamma: float = 128.0) -> torch.Tensor:
    """CosFace over all pairs in the batch: positives pushed above negatives by ``margin``."""
    f = F.normalize(features, dim=1)
    sim = f @ f.T
    same = (targets[:, None] == targets[None, :]).float()
    pos_mask = same - torch.eye(len(targets), device=f.device)
    neg_mask = 1 - same
    logit_p = -gamma * sim - (1 - pos_mask) * 1e12
    logit_n = gamma * (sim + margin) - (1 - neg_mask) * 1e12
    return F.softplus(torch.logsumexp(logit_p, 1) + torch.logsumexp(logit_n, 1)).mean()


# The losses MODEL.LOSSES.NAME can name (fast-reid's spellings), each with its config weights.

@LOSSES.register("CrossEntropyLoss", output="loss_cls", needs=("cls_outputs",))
def _cross_entropy_loss(outputs: dict, targets: torch.Tensor, c) -> torch.Tensor:
    return cross_entropy(outputs["cls_outputs"], targets, c.CE.EPSILON) * c.CE.SCALE


@LOSSES.register("TripletLoss", output="loss_triplet", needs=("features",))
def _triplet_loss(outputs: dict, targets: torch.Tensor, c) -> torch.Tensor:
    return triplet(outputs["features"], targets, c.TRI.MARGIN, c.TRI.NORM_FEAT, c.TRI.HARD_MINING) * c.TRI.SCALE


@LOSSES.register("CircleLoss", output="loss_circle", needs=("features",))
def _circle_loss(outputs: dict, targets: torch.Tensor, c) -> torch.Tensor:
    return pairwise_circle(outputs["features"], targets, c.CIRCLE.MARGIN, c.CIRCLE.GAMMA) * c.CIRCLE.SCALE


@LOSSES.register("Cosface", output="loss_cosface", needs=("features",))
def _cosface_loss(outputs: dict, targets: torch.Tensor, c) -> torch.Tensor:
    return pairwise_cosface(outputs["features"], targets, c.COSFACE.MARGIN, c.COSFACE.GAMMA) * c.COSFACE.SCALE
