#!/usr/bin/env python
"""Cross-camera association on real data: the CUHK03 test split as tracklets (each identity's
crops of camera A one tracklet, of camera B another, track ids shuffled), associated by
`reidkit.mtmc` with the shipped model; pairwise precision / recall / F1 per method.

    python benchmarks/bench_mtmc.py --cuhk03 ../shared/data/cuhk03-detected [--reid MODEL] \
        [--video vtest.avi --gt ../shared/data/pets09-s2l1-dev/gt/gt.txt]

With ``--video`` and ``--gt``: the video's frames 1-200 and 201-400 as two cameras, each tracked
by `reid track`; a tracklet's true person is the ground-truth id most of its boxes overlap
(IoU >= 0.5); pairs are scored across the two cameras.

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


def video_as_two_cameras(video: Path, gt: Path, reid: str, out: Path):
    """(records, true person per record) of two `reid track` runs over frames 1-200 and 201-400,
    both into one gallery (online global ids in their identities.csv)."""
    import subprocess
    import sys

    from reidkit.mtmc.tracklets import read_track_output
    from reidkit.tracking.matching import iou_matrix

    truth_rows = np.loadtxt(gt, delimiter=",")
    records, truth = [], []
    for name, start in (("first", 1), ("second", 201)):
        folder = out / name
        subprocess.run([sys.executable, "-m", "reidkit.cli.main", "track", str(video), "-o", str(folder), "--camera",
                        name, "--start", str(start), "--max-frames", "200", "--no-video", "-q", "--reid", reid, "--gallery", str(out / "gallery")],
                       check=True, capture_output=True)
        boxes = {}
        with np.load(folder / "tracklets.npz") as npz:
            import json

            entries = json.loads((folder / "tracklets.json").read_text())["tracklets"]
            for i, e in enumerate(entries):
                a, b = npz["offsets"][i], npz["offsets"][i + 1]
                boxes.setdefault(e["track_id"], []).append((npz["frames"][a:b], npz["boxes"][a:b]))
        for r in read_track_output(folder):
            votes: dict[int, int] = {}
            for frames, bxs in boxes[r.track_id]:
                for f, box in zip(frames, bxs):
                    g = truth_rows[truth_rows[:, 0] == f]
                    if not len(g):
                        continue
                    iou = iou_matrix(box[None].astype(np.float64),
                                     np.c_[g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]])[0]
                    if iou.max() >= 0.5:
                        votes[int(g[iou.argmax(), 1])] = votes.get(int(g[iou.argmax(), 1]), 0) + 1
            records.append(r)
            truth.append(max(votes, key=votes.get) if votes else -1 - len(truth))  # unmatched: a person of its own
    return records, np.array(truth)


#: PETS09-S2L1 ground-truth ids of people who leave and come back, which MOTChallenge numbers anew:
#: 1 (frames 224-400) is 19 (1-147), the man in the black coat; 14 (231-400) is 15 (1-206), the man
#: in the dark jacket with a white sheet in his hand (we looked at their crops side by side).
RETURNING = {1: 19, 14: 15}


def cross_camera_scores(labels: np.ndarray, truth: np.ndarray, cameras: np.ndarray) -> dict[str, float]:
    """Pairwise precision / recall / F1 over pairs of tracklets from different cameras."""
    i, j = np.triu_indices(len(labels), 1)
    keep = cameras[i] != cameras[j]
    said, real = labels[i][keep] == labels[j][keep], truth[i][keep] == truth[j][keep]
    tp = int((said & real).sum())
    p = tp / max(int(said.sum()), 1) if said.any() else 1.0
    r = tp / max(int(real.sum()), 1) if real.any() else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def synthetic_cameras(tracklets: int, cameras: int, seed: int = 0, dim: int = 256, noise: float = 0.6):
    """People walking from camera to camera: each visit a tracklet (20-60 s, then 10-120 s of walking
    to a random next camera), its feature a noisy view of the person's; (records, person per record)."""
    from reidkit.mtmc.tracklets import TrackletRecord

    rng = np.random.default_rng(seed)
    people = max(1, tracklets // 5)
    looks = rng.standard_normal((people, dim))
    records, truth = [], []
    clock = rng.uniform(0, 600, people)
    while len(records) < tracklets:
        p = int(rng.integers(people))
        start = clock[p]
        end = start + rng.uniform(20, 60)
        clock[p] = end + rng.uniform(10, 120)
        view = looks[p] + noise * rng.standard_normal(dim)
        records.append(TrackletRecord(f"cam{int(rng.integers(cameras)):02d}", len(records), start, end,
                                      view / np.linalg.norm(view)))
        truth.append(p)
    return records, np.array(truth)


def scale(tracklets: int, cameras: int) -> None:
    """Time and peak memory of associating ``tracklets`` synthetic tracklets of ``cameras`` cameras."""
    import resource
    import time

    from reidkit.mtmc.associate import Topology, Transition, associate, sampled_threshold
    from reidkit.mtmc.blocking import FIT_BLOCK
    from reidkit.mtmc.metrics import pairwise_scores

    records, truth = synthetic_cameras(tracklets, cameras)
    names = sorted({r.camera for r in records})
    # the generator's walks: any camera to any other in 10-120 s
    topology = Topology(tuple(Transition(a, b, 10.0, 120.0) for a in names for b in names if a != b))
    runs = [("in blocks, no topology", None, True),
            (f"in blocks, topology of {len(topology.transitions)} transitions", topology, True)]
    if tracklets <= 20_000:
        runs = [("one matrix, no topology", None, False),
                (f"one matrix, topology of {len(topology.transitions)} transitions", topology, False)] + runs
    for label, topo, blocks in runs:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        if blocks:
            from reidkit.mtmc.blocking import associate_in_blocks

            stats: dict = {}
            labels = associate_in_blocks(records, sampled_threshold(records), topo, stats, fit=FIT_BLOCK)
            label = (f"{label} (threshold {stats['threshold']:.3f}, largest block {stats['largest_component']}, "
                     f"{stats['close_pairs']} close pairs)")
        else:
            labels = associate(records, topology=topo)
        seconds = time.perf_counter() - start
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2 ** 20
        s = pairwise_scores(labels, truth)
        print(f"synthetic, {label}: {tracklets} tracklets of {len(set(truth.tolist()))} people in {cameras} cameras "
              f"associated in {seconds:.1f} s (peak memory +{peak:.2f} GB over the previous peak); pairwise "
              f"precision {s['precision']:.3f}, recall {s['recall']:.3f}, F1 {s['f1']:.3f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuhk03", type=Path, help="the CUHK03 folder in Market-1501 layout")
    parser.add_argument("--scale", type=int, nargs=2, metavar=("TRACKLETS", "CAMERAS"),
                        help="also associate this many synthetic tracklets of this many cameras, timed")
    parser.add_argument("--reid", default="default", help="a model as `reid track --reid` takes it")
    parser.add_argument("--video", type=Path, help="vtest.avi (PETS09-S2L1), to associate its two halves")
    parser.add_argument("--gt", type=Path, help="the MOTChallenge ground truth of the video")
    args = parser.parse_args()

    from reidkit.mtmc.associate import IMPOSTORS, associate, calibrated_threshold, cannot_links, distances
    from reidkit.mtmc.metrics import pairwise_scores

    if args.scale:
        scale(*args.scale)
    if args.cuhk03 is not None:
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
        for impostors in (2, 5):
            t = calibrated_threshold(dist, blocked, impostors)
            default = " (default)" if impostors == IMPOSTORS else ""
            row(f"agglomerative, threshold from the data ({impostors} impostors a tracklet: {t:.3f}){default}",
                associate(records, t))
        row("agglomerative, re-ranked, threshold from the data", associate(records, rerank=True))
        row("closed world (Hungarian, no threshold)", associate(records, closed_world=True))
    if args.video is None or args.gt is None:
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records, truth = video_as_two_cameras(args.video, args.gt, args.reid, tmp)
        cams = np.array([r.camera for r in records])
        print(f"\n{args.video.name} frames 1-200 and 201-400 as two cameras: {len(records)} tracklets "
              f"({(cams == 'first').sum()} + {(cams == 'second').sum()}); cross-camera pairs\n")
        print("| method | precision | recall | F1 | F1, returning people joined |\n|---|---|---|---|---|")
        joined = np.array([RETURNING.get(int(t), int(t)) for t in truth])

        def cross(name, labels):
            s = cross_camera_scores(np.asarray(labels), truth, cams)
            j = cross_camera_scores(np.asarray(labels), joined, cams)
            print(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {j['f1']:.3f} |", flush=True)

        cross("baseline: Hungarian, cosine <= 0.3", hungarian_baseline(records))
        from reidkit.mtmc.tables import read_labels

        online = {**read_labels(tmp / "first" / "identities.csv", "global_id"),
                  **read_labels(tmp / "second" / "identities.csv", "global_id")}
        cross("online: `reid track --gallery` (default --id-threshold: 0.3 x the model's distance_scale)",
              [int(online[(r.camera, r.track_id)]) for r in records])
        dist, blocked = distances(records), cannot_links(records)
        from reidkit.inference.resolve import distance_scale_of
        from reidkit.mtmc.associate import FALLBACK_THRESHOLD

        t = calibrated_threshold(dist, blocked, fallback=FALLBACK_THRESHOLD * distance_scale_of(args.reid))
        cross(f"agglomerative, threshold from the data ({t:.3f}: too few negatives, the fallback; default)",
              associate(records, t))
        for threshold in (0.2, 0.3):
            cross(f"agglomerative, threshold {threshold}", associate(records, threshold))
        joined_idf1(args.gt, tmp)


def joined_idf1(gt: Path, runs: Path) -> None:
    """IDF1 over frames 1-400 on one timeline: per-camera ids (the second half's ids offset, so
    every track of it is a new person) against the global ids of `reid mtmc`."""
    from reidkit.pipeline.mtmc_run import run_mtmc
    from reidkit.tracking.mot import evaluate_mot

    first, second = (runs / "first" / "tracks.txt").read_text(), (runs / "second" / "tracks.txt").read_text()
    offset = "\n".join(",".join([p[0], str(int(p[1]) + 10_000), *p[2:]]) for p in
                       (line.split(",") for line in second.splitlines() if line.strip()))
    (runs / "per_camera.txt").write_text(first + offset + "\n")
    gt_file = runs / "gt.txt"
    gt_file.write_text("".join(line + "\n" for line in gt.read_text().splitlines()
                               if line.strip() and int(float(line.split(",")[0])) <= 400))
    per_camera = evaluate_mot(gt_file, runs / "per_camera.txt", 400)
    print("\n| ids over frames 1-400 | IDF1 | HOTA | IDSW |\n|---|---|---|---|")
    print(f"| per camera | {per_camera['IDF1']:.1f} | {per_camera['HOTA']:.1f} | {per_camera['IDSW']} |")
    for name, options in (("global, reid mtmc defaults", {}), ("global, threshold 0.2", {"threshold": 0.2}),
                          ("global, closed world", {"closed_world": True})):
        out = runs / f"mtmc_{len(name)}"
        run_mtmc([runs / "first", runs / "second"], out, **options)
        joined = (out / "tracks" / "first.txt").read_text() + (out / "tracks" / "second.txt").read_text()
        (out / "joined.txt").write_text(joined)
        m = evaluate_mot(gt_file, out / "joined.txt", 400)
        print(f"| {name} | {m['IDF1']:.1f} | {m['HOTA']:.1f} | {m['IDSW']} |", flush=True)


if __name__ == "__main__":
    main()
