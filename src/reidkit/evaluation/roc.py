"""Verification ROC over all query/gallery pairs kept by the Market protocol (numpy only).

fast-reid's convention is kept so that its TPR@FPR numbers can be compared: the *positive* class
is an impostor pair (different identities) and the score is the distance, so TPR is the fraction
of impostor pairs rejected and FPR the fraction of genuine pairs rejected at a threshold.
Intermediate collinear points are dropped as scikit-learn's ``roc_curve`` does by default, and
``tpr_at_fpr`` picks the curve point whose FPR is nearest to the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rank import check_eval_inputs

DEFAULT_FPRS = (1e-4, 1e-3, 1e-2)


@dataclass(frozen=True)
class RocCurve:
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


def pair_distances(distmat, q_pids, g_pids, q_camids, g_camids) -> tuple[np.ndarray, np.ndarray]:
    """Distances of genuine and impostor pairs, with same-identity same-camera pairs removed."""
    distmat, q_pids, g_pids, q_camids, g_camids = check_eval_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    genuine, impostor = [], []
    for start in range(0, distmat.shape[0], 512):
        stop = min(start + 512, distmat.shape[0])
        same_id = q_pids[start:stop, None] == g_pids[None, :]
        same_cam = q_camids[start:stop, None] == g_camids[None, :]
        block = distmat[start:stop]
        genuine.append(block[same_id & ~same_cam])
        impostor.append(block[~same_id])
    return np.concatenate(genuine), np.concatenate(impostor)


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> RocCurve:
    """ROC with impostor pairs as the positive class and distance as the score."""
    if genuine.size == 0 or impostor.size == 0:
        raise ValueError(f"ROC needs genuine and impostor pairs, got {genuine.size} and {impostor.size}")
    gen = np.sort(genuine)
    imp = np.sort(impostor)
    thresholds = np.unique(np.concatenate([gen, imp]))[::-1]
    tps = imp.size - np.searchsorted(imp, thresholds, side="left")  # impostors with score >= t
    fps = gen.size - np.searchsorted(gen, thresholds, side="left")  # genuine with score >= t
    if thresholds.size > 2:
        keep = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        tps, fps, thresholds = tps[keep], fps[keep], thresholds[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thresholds = np.r_[np.inf, thresholds]
    return RocCurve(fpr=fps / fps[-1], tpr=tps / tps[-1], thresholds=thresholds)


def tpr_at_fpr(curve: RocCurve, targets=DEFAULT_FPRS) -> dict[str, float]:
    """TPR at the curve point nearest each target FPR, keyed like fast-reid (``TPR@FPR=1e-04``)."""
    return {f"TPR@FPR={t:.0e}": float(curve.tpr[np.argmin(np.abs(curve.fpr - t))]) for t in targets}


def evaluate_roc(distmat, q_pids, g_pids, q_camids, g_camids, targets=DEFAULT_FPRS) -> dict[str, float]:
    """TPR at the target FPRs for a query/gallery distance matrix."""
    return tpr_at_fpr(roc_curve(*pair_distances(distmat, q_pids, g_pids, q_camids, g_camids)), targets)
