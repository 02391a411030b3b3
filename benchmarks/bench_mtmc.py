#!/usr/bin/env python
"""Cross-camera association on real data: the CUHK03 test split as tracklets (each identity's
crops of camera A one tracklet, of camera B another, track ids shuffled), associated by
`reidkit.mtmc` with the shipped model; pairwise precision / recall / F1 per method.

    python benchmarks/bench_mtmc.py --cuhk03 ../shared/data/cuhk03-detected [--reid MODEL]

The baseline the issue names: mean features, one-to-one Hungarian matching, cosine threshold 0.3.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def cuhk03_tracklets(root: Path, reid: str):
    """(records, true person per record) of the test split (query + gallery) with ``reid`` features."""
    from reidkit.data.datasets import build_dataset
    from reidkit.inference.resolve import resolve_embedder
    from reidkit.mtmc.tracklets import TrackletRecord, tracklet_feature

    ds = build_dataset("Market1501", root)
    images = ds.query + ds.gallery
    embedder = resolve_embedder(reid, runtime="onnxruntime")
    feats, ok, failed = embedder.embed_files([r.path for r in images])
    if failed:
        raise SystemExit(f"unreadable images: {failed[:3]}")
    groups: dict[tuple[int, int], list[int]] = {}
    for row, i in enumerate(ok):
        groups.setdefault((images[i].pid, images[i].camid), []).append(row)
    keys = list(groups)
    order = np.random.default_rng(0).permutation(len(keys))  # shuffled track ids
    records, truth = [], []
    for track_id, k in enumerate(order):
        pid, cam = keys[k]
        rows = groups[(pid, cam)]
        feature = tracklet_feature(feats[rows], np.ones(len(rows)), best=len(rows))
        # every tracklet of a camera spans the same time: one camera's tracklets are different people
        records.append(TrackletRecord(f"cam{cam}", track_id, 0.0, 1.0, feature))
        truth.append(pid)
    return records, np.array(truth)


def hungarian_baseline(records, threshold: float = 0.3) -> np.ndarray:
    """The issue's reference: one-to-one matching of the two cameras, pairs beyond ``threshold`` left apart."""
    from scipy.optimize import linear_sum_assignment

    cams = np.array([r.camera for r in records])
    names = sorted(set(cams.tolist()))
    a, b = np.flatnonzero(cams == names[0]), np.flatnonzero(cams == names[1])
    feats = np.stack([r.feature for r in records])
    cost = 1.0 - feats[a] @ feats[b].T
    labels = np.arange(len(records))
    for i, j in zip(*linear_sum_assignment(cost)):
        if cost[i, j] <= threshold:
            labels[b[j]] = a[i]
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuhk03", type=Path, required=True, help="the CUHK03 folder in Market-1501 layout")
    parser.add_argument("--reid", default="default", help="a model as `reid track --reid` takes it")
    args = parser.parse_args()

    from reidkit.mtmc.associate import associate, calibrated_threshold, cannot_links, distances
    from reidkit.mtmc.metrics import pairwise_scores

    records, truth = cuhk03_tracklets(args.cuhk03, args.reid)
    print(f"CUHK03 test split: {len(records)} tracklets of {len(set(truth.tolist()))} people in "
          f"{len({r.camera for r in records})} cameras")
    print("| method | precision | recall | F1 | identities |\n|---|---|---|---|---|")

    def row(name, labels):
        s = pairwise_scores(labels, truth)
        print(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['identities']} |", flush=True)

    row("baseline: Hungarian, cosine <= 0.3", hungarian_baseline(records))
    for threshold in (0.3, 0.4, 0.5, 0.6):
        row(f"agglomerative, threshold {threshold}", associate(records, threshold))
    dist, blocked = distances(records), cannot_links(records)
    for quantile in (0.01, 0.02, 0.05):
        t = calibrated_threshold(dist, blocked, quantile)
        row(f"agglomerative, threshold from the data ({quantile:.0%} of same-camera pairs: {t:.3f})",
            associate(records, t))
    row("agglomerative, re-ranked, threshold from the data (default)", associate(records, rerank=True))
    row("closed world (Hungarian, no threshold)", associate(records, closed_world=True))


if __name__ == "__main__":
    main()
