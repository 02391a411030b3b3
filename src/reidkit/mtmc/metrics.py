"""How good a set of identities is, against the truth: pairwise precision, recall, F1 and purity.

Over all pairs of tracklets: a pair is predicted together when both got one global id, truly
together when both are one person. Precision = right "together" calls / all "together" calls;
recall = right ones / all true pairs; F1 their harmonic mean. Purity: the share of tracklets
whose identity's most common true person is theirs. numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pair_counts(labels: np.ndarray) -> int:
    """Pairs of items that share a label."""
    _, counts = np.unique(labels, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def pairwise_scores(predicted: Sequence, truth: Sequence) -> dict[str, float]:
    """Pairwise precision, recall, F1 and purity of ``predicted`` labels against ``truth`` labels
    (one each per tracklet); also the number of identities of each."""
    pred, true = np.asarray(predicted), np.asarray(truth)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"need one predicted and one true label per tracklet, got {pred.shape} and {true.shape}")
    _, joint = np.unique(np.stack([pred.astype(str), true.astype(str)]), axis=1, return_inverse=True)
    both = pair_counts(joint.reshape(-1))
    said, real = pair_counts(pred), pair_counts(true)
    precision = both / said if said else 1.0
    recall = both / real if real else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    purity = 0
    for label in np.unique(pred):
        _, counts = np.unique(true[pred == label], return_counts=True)
        purity += int(counts.max())
    return {"precision": precision, "recall": recall, "f1": f1, "purity": purity / max(len(pred), 1),
            "identities": int(len(np.unique(pred))), "true_identities": int(len(np.unique(true))),
            "tracklets": int(len(pred))}
