#!/usr/bin/env python
"""Tracking quality and speed on real footage: PETS09-S2L1 (vtest.avi) frames 1-400, and the
MOT15 public-detection sequences.

Cases on PETS09, all fed the same detections (SSDLite, score >= 0.3, computed once):
- reidkit with the default ReID model (appearance + motion, re-entry);
- reidkit motion-only;
and the end-to-end speed of the full pipeline with its split (decode, detect, embed, track).
On the public detections of PETS09 and MOT15 (no frames): reidkit motion-only. Scores: trackeval
(HOTA, DetA, AssA, MOTA, IDF1, ID switches) under MOT15 rules.

    python benchmarks/bench_track.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        --data ../shared/data
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def score(gt: Path, rows, frames: int) -> dict:
    from reidkit.tracking.mot import evaluate_mot, write_mot

    with tempfile.TemporaryDirectory() as tmp:
        pred = write_mot(Path(tmp) / "pred.txt", rows)
        return evaluate_mot(gt, pred, frames)


def rows_of(tracklets) -> list:
    return [(int(f), t.track_id, b, float(s)) for t in tracklets for f, b, s in zip(t.frames, t.boxes, t.scores)]


def line(name: str, m: dict, extra: str = "") -> str:
    return (f"| {name} | {m['HOTA']:.1f} | {m['DetA']:.1f} | {m['AssA']:.1f} | {m['MOTA']:.1f} | {m['IDF1']:.1f} | "
            f"{m['IDSW']} | {extra} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, required=True, help="vtest.avi (PETS09-S2L1).")
    ap.add_argument("--data", type=Path, required=True, help="../shared/data (pets09-s2l1-dev, mot15-public).")
    ap.add_argument("--frames", type=int, default=400)
    args = ap.parse_args()

    from reidkit.detection import SSDLiteDetector
    from reidkit.inference import Embedder
    from reidkit.pipeline import NoFrames, VideoSource, run_tracking
    from reidkit.tracking import TrackerConfig
    from reidkit.tracking.mot import MOTDetections

    gt = args.data / "pets09-s2l1-dev" / "gt" / "gt.txt"
    detector, embedder = SSDLiteDetector(score_threshold=0.3), Embedder.default()
    cached: dict[int, object] = {}

    def detect(frame, number):
        if number not in cached:
            cached[number] = detector.detect(frame)
        return cached[number]

    print("| tracker (PETS09-S2L1 frames 1-%d) | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | notes |" % args.frames)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    full = run_tracking(VideoSource(args.video, limit=args.frames), detect, embedder, TrackerConfig())
    split = ", ".join(f"{k} {v / full.frames * 1000:.1f} ms" for k, v in full.seconds.items())
    print(line("reidkit, SSDLite + default ReID", score(gt, rows_of(full.tracklets), args.frames),
               f"{full.fps:.1f} fps end to end ({split} a frame); {full.reentries} re-entries restored"), flush=True)
    motion = run_tracking(VideoSource(args.video, limit=args.frames), detect, None, TrackerConfig())
    print(line("reidkit, SSDLite, motion only", score(gt, rows_of(motion.tracklets), args.frames),
               "same detections"), flush=True)

    print("\n| public detections, motion only | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | notes |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    seqs = [args.data / "pets09-s2l1-dev"] + sorted((args.data / "mot15-public").glob("*/det"))
    for seq in seqs:
        seq = seq.parent if seq.name == "det" else seq
        dets = MOTDetections(seq / "det" / "det.txt")
        start = time.perf_counter()
        result = run_tracking(NoFrames(dets.last_frame), lambda frame, number: dets.for_frame(number), None,
                              TrackerConfig())
        seconds = time.perf_counter() - start
        m = score(seq / "gt" / "gt.txt", rows_of(result.tracklets), dets.last_frame)
        print(line(f"reidkit on {seq.name}", m, f"{dets.last_frame / seconds:.0f} fps"), flush=True)


if __name__ == "__main__":
    main()
