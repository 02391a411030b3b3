#!/usr/bin/env python
"""Tracking quality and speed on real footage: PETS09-S2L1 (vtest.avi) frames 1-400, the MOT15
public-detection sequences, and the whole video end to end.

1. PETS09 frames 1-400 with the default detector (YOLOX-Nano, boxes from score 0.1, computed
   once): reidkit with the default ReID model (the pipeline as ``reid track`` runs it), reidkit
   motion-only, and with ``--boxmot DIR`` (a separate install of boxmot, AGPL-3.0, never a
   reidkit dependency: ``pip install --target DIR --no-deps boxmot==25.0.0 lap``) boxmot's
   ByteTrack, OC-SORT, BoT-SORT and BoT-SORT with reidkit's default ReID features of every box,
   all on the same boxes, run in their own process by ``boxmot_side.py`` (boxmot's defaults).
2. Public detections (no frames, scores rescaled to [0, 1]): reidkit motion-only against the same
   boxmot trackers with the thresholds of ../shared/data (low 0.0, new tracks 0.3).
3. Speed: ``reid track VIDEO --no-video`` on the whole video (decode to MOT file), 3 runs, median,
   with the detector alone timed beside it as the machine's reference.

Scores: trackeval (HOTA, DetA, AssA, MOTA, IDF1, ID switches) under MOT15 rules.

    python benchmarks/bench_track.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \\
        --data ../shared/data --boxmot /tmp/boxmot
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def score(gt: Path, rows, frames: int) -> dict:
    from reidkit.tracking.mot import evaluate_mot, write_mot

    with tempfile.TemporaryDirectory() as tmp:
        pred = write_mot(Path(tmp) / "pred.txt", rows)
        return evaluate_mot(gt, pred, frames)


def rows_of(tracklets) -> list:
    return [(int(f), t.track_id, b, float(s)) for t in tracklets for f, b, s in zip(t.frames, t.boxes, t.scores)]


def boxmot_rows(boxmot: Path, per_frame: list, image_size: tuple[int, int], feats: list | None = None,
                video: Path | None = None, public: bool = False) -> dict[str, tuple[list, float]]:
    """boxmot's trackers on ``per_frame`` [(frame number, Detections)]: {name: (rows, seconds)}."""
    with tempfile.TemporaryDirectory() as tmp:
        dets, out = Path(tmp) / "dets.npz", Path(tmp) / "out.npz"
        boxes = [np.concatenate([d.xyxy, d.score[:, None]], axis=1) for _, d in per_frame]
        extra = {"feats": np.concatenate(feats).astype(np.float32)} if feats is not None else {}
        np.savez(dets, frames=np.array([f for f, _ in per_frame]), image_size=np.array(image_size),
                 offsets=np.cumsum([0] + [len(b) for b in boxes]),
                 boxes=np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 5), np.float32), **extra)
        env = {**os.environ, "PYTHONPATH": str(boxmot)}
        cmd = [sys.executable, str(Path(__file__).with_name("boxmot_side.py")), str(dets), str(out)]
        cmd += (["--video", str(video)] if video else []) + (["--public"] if public else [])
        subprocess.run(cmd, check=True, env=env)
        data = np.load(out)
        # ids shifted by one: some boxmot trackers number from 0, MOTChallenge from 1
        return {name: ([(int(r[0]), int(r[1]) + 1, r[2:6], float(r[6])) for r in data[name]],
                       float(data[f"{name}_seconds"]))
                for name in data.files if not name.endswith("_seconds")}


def image_size_of(seq: Path) -> tuple[int, int]:
    """(height, width) of a MOTChallenge sequence, as boxmot takes it."""
    from reidkit.tracking.mot import sequence_image_size

    w, h = sequence_image_size(seq / "seqinfo.ini") or (768, 576)  # PETS09-S2L1 (vtest.avi)
    return h, w


def line(name: str, m: dict, extra: str = "") -> str:
    return (f"| {name} | {m['HOTA']:.1f} | {m['DetA']:.1f} | {m['AssA']:.1f} | {m['MOTA']:.1f} | {m['IDF1']:.1f} | "
            f"{m['IDSW']} | {extra} |")


HEADER = "| {} | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | notes |\n|---|---|---|---|---|---|---|---|"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, required=True, help="vtest.avi (PETS09-S2L1).")
    ap.add_argument("--data", type=Path, required=True, help="../shared/data (pets09-s2l1-dev, mot15-public).")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--boxmot", type=Path, help="A separate boxmot install (pip --target DIR) to run beside ours.")
    ap.add_argument("--speed-runs", type=int, default=3)
    args = ap.parse_args()

    from reidkit.pipeline import NoFrames, VideoSource, run_tracking
    from reidkit.pipeline.components import DEFAULT_DETECTOR, make_detector, make_embedder
    from reidkit.pipeline.sources import frames_near
    from reidkit.pipeline.track import REID_EVERY, crops_of
    from reidkit.tracking import TrackerConfig
    from reidkit.tracking.mot import MOTDetections

    gt = args.data / "pets09-s2l1-dev" / "gt" / "gt.txt"
    detector, _, _ = make_detector(DEFAULT_DETECTOR, 0.1)
    embedder = make_embedder("default")
    cached: dict[int, object] = {}
    features: dict[int, np.ndarray] = {}

    def detect(frame, number):
        if number not in cached:
            cached[number] = detector(frame, number)
            crops, ok = crops_of(frame, cached[number].xyxy)
            f = np.zeros((len(cached[number]), embedder.dim), np.float32)
            if crops:
                f[ok] = embedder.embed(crops)
            features[number] = f
        return cached[number]

    print(HEADER.format(f"PETS09-S2L1 frames 1-{args.frames}, YOLOX-Nano boxes"), flush=True)
    scale = embedder.card.distance_scale if embedder.card is not None else 1.0  # as `reid track` reads it
    full = run_tracking(VideoSource(args.video, limit=args.frames), detect, embedder,
                        TrackerConfig(appearance_refresh=REID_EVERY, distance_scale=scale))
    print(line("reidkit + default ReID", score(gt, rows_of(full.tracklets), args.frames),
               f"{full.reentries} re-entries restored"), flush=True)
    motion = run_tracking(VideoSource(args.video, limit=args.frames), detect, None, TrackerConfig())
    print(line("reidkit, motion only", score(gt, rows_of(motion.tracklets), args.frames), "same boxes"), flush=True)
    if args.boxmot:
        numbers = sorted(cached)
        got = boxmot_rows(args.boxmot, [(n, cached[n]) for n in numbers], (576, 768),
                          feats=[features[n] for n in numbers], video=args.video)
        for name, (rows, seconds) in got.items():
            note = "same boxes" + (", reidkit's ReID features of every box" if "ReID" in name else "")
            print(line(f"boxmot {name}", score(gt, rows, args.frames), note), flush=True)

    print("\n" + HEADER.format("public detections, motion only"), flush=True)
    seqs = [args.data / "pets09-s2l1-dev"] + sorted(p.parent for p in (args.data / "mot15-public").glob("*/det"))
    for seq in seqs:
        dets = MOTDetections(seq / "det" / "det.txt")
        config = TrackerConfig.for_scores(not dets.rescaled)
        start = time.perf_counter()
        result = run_tracking(NoFrames(frames_near(dets.frames, config.max_age + 1), size=dets.image_size),
                              lambda frame, number: dets.for_frame(number), None, config)
        seconds = time.perf_counter() - start
        m = score(seq / "gt" / "gt.txt", rows_of(result.tracklets), dets.last_frame)
        print(line(f"reidkit on {seq.name}", m, f"{dets.last_frame / seconds:.0f} fps"), flush=True)
        if args.boxmot:
            per_frame = [(n, dets.for_frame(n)) for n in range(1, dets.last_frame + 1)]
            for name, (rows, secs) in boxmot_rows(args.boxmot, per_frame, image_size_of(seq), public=True).items():
                m = score(seq / "gt" / "gt.txt", rows, dets.last_frame)
                print(line(f"boxmot {name} on {seq.name}", m, f"{dets.last_frame / secs:.0f} fps"), flush=True)

    if args.speed_runs:
        fps, walls = [], []
        for _ in range(args.speed_runs):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                run = subprocess.run([sys.executable, "-m", "reidkit.cli.main", "track", str(args.video), "-o", tmp,
                                      "--no-video", "-q", "--json"], check=True, capture_output=True, text=True)
                walls.append(time.perf_counter() - start)
            fps.append(json.loads(run.stdout)["fps"])
        import cv2

        cap, frames, ms = cv2.VideoCapture(str(args.video)), [], 0.0
        for _ in range(100):
            frames.append(np.ascontiguousarray(cap.read()[1][:, :, ::-1]))
        start = time.perf_counter()
        for i, f in enumerate(frames):
            detector(f, i + 1)
        ms = 1000 * (time.perf_counter() - start) / len(frames)
        print(f"\nwhole video, `reid track VIDEO --no-video` (decode to MOT file): "
              f"{', '.join(f'{v:.1f}' for v in fps)} frames/s, median {statistics.median(fps):.1f} "
              f"(the command from start to exit, model loading included: median {statistics.median(walls):.1f} s); "
              f"YOLOX-Nano alone on this machine now: {ms:.1f} ms a frame")


if __name__ == "__main__":
    main()
