#!/usr/bin/env python
"""Tracking quality and speed on real footage: PETS09-S2L1 (vtest.avi) frames 1-400, and the
MOT15 public-detection sequences.

Cases on PETS09, all fed the same detections (SSDLite, score >= 0.3, computed once):
- reidkit with the default ReID model (appearance + motion, re-entry);
- reidkit motion-only;
- with ``--boxmot DIR`` (a separate install of boxmot, AGPL-3.0, never a reidkit dependency:
  ``pip install --target DIR --no-deps boxmot==25.0.0 lap``): boxmot's ByteTrack and OC-SORT,
  run in their own process by ``boxmot_side.py``;
and the end-to-end speed of the full pipeline with its split (decode, detect, embed, track).
On the public detections of PETS09 and MOT15 (no frames): reidkit motion-only and boxmot's
trackers. Scores: trackeval (HOTA, DetA, AssA, MOTA, IDF1, ID switches) under MOT15 rules.

    python benchmarks/bench_track.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        --data ../shared/data --boxmot /tmp/boxmot
"""

from __future__ import annotations

import argparse
import configparser
import os
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


def boxmot_rows(boxmot: Path, per_frame: list, image_size: tuple[int, int]) -> dict[str, tuple[list, float]]:
    """boxmot's trackers on ``per_frame`` [(frame number, Detections)]: {name: (rows, seconds)}."""
    with tempfile.TemporaryDirectory() as tmp:
        dets, out = Path(tmp) / "dets.npz", Path(tmp) / "out.npz"
        boxes = [np.concatenate([d.xyxy, d.score[:, None]], axis=1) for _, d in per_frame]
        np.savez(dets, frames=np.array([f for f, _ in per_frame]), image_size=np.array(image_size),
                 offsets=np.cumsum([0] + [len(b) for b in boxes]),
                 boxes=np.concatenate(boxes).astype(np.float32) if boxes else np.zeros((0, 5), np.float32))
        env = {**os.environ, "PYTHONPATH": str(boxmot)}
        subprocess.run([sys.executable, str(Path(__file__).with_name("boxmot_side.py")), str(dets), str(out)],
                       check=True, env=env)
        data = np.load(out)
        return {name: ([(int(r[0]), int(r[1]), r[2:6], float(r[6])) for r in data[name]],
                       float(data[f"{name}_seconds"]))
                for name in data.files if not name.endswith("_seconds")}


def image_size_of(seq: Path) -> tuple[int, int]:
    info = configparser.ConfigParser()
    info.read(seq / "seqinfo.ini")
    if "Sequence" in info:
        return int(info["Sequence"]["imHeight"]), int(info["Sequence"]["imWidth"])
    return 576, 768  # PETS09-S2L1 (vtest.avi)


def line(name: str, m: dict, extra: str = "") -> str:
    return (f"| {name} | {m['HOTA']:.1f} | {m['DetA']:.1f} | {m['AssA']:.1f} | {m['MOTA']:.1f} | {m['IDF1']:.1f} | "
            f"{m['IDSW']} | {extra} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, required=True, help="vtest.avi (PETS09-S2L1).")
    ap.add_argument("--data", type=Path, required=True, help="../shared/data (pets09-s2l1-dev, mot15-public).")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--boxmot", type=Path, help="A separate boxmot install (pip --target DIR) to run beside ours.")
    args = ap.parse_args()

    from reidkit.detection import SSDLiteDetector
    from reidkit.pipeline import NoFrames, VideoSource, run_tracking
    from reidkit.pipeline.components import make_embedder
    from reidkit.tracking import TrackerConfig
    from reidkit.tracking.mot import MOTDetections

    gt = args.data / "pets09-s2l1-dev" / "gt" / "gt.txt"
    detector, embedder = SSDLiteDetector(score_threshold=0.3), make_embedder("default")
    cached: dict[int, object] = {}

    def detect(frame, number):
        if number not in cached:
            cached[number] = detector.detect(frame)
        return cached[number]

    print("| tracker (PETS09-S2L1 frames 1-%d) | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | notes |" % args.frames)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    full = run_tracking(VideoSource(args.video, limit=args.frames), detect, embedder, TrackerConfig(), refresh=5)
    split = ", ".join(f"{k} {v / full.frames * 1000:.1f} ms" for k, v in full.seconds.items())
    print(line("reidkit, SSDLite + default ReID", score(gt, rows_of(full.tracklets), args.frames),
               f"{full.fps:.1f} fps end to end ({split} a frame); {full.reentries} re-entries restored"), flush=True)
    motion = run_tracking(VideoSource(args.video, limit=args.frames), detect, None, TrackerConfig())
    print(line("reidkit, SSDLite, motion only", score(gt, rows_of(motion.tracklets), args.frames),
               "same detections"), flush=True)
    if args.boxmot:
        ssd = [(n, cached[n]) for n in sorted(cached)]
        for name, (rows, seconds) in boxmot_rows(args.boxmot, ssd, (576, 768)).items():
            print(line(f"boxmot {name}, SSDLite", score(gt, rows, args.frames), "same detections"), flush=True)

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
        if args.boxmot:
            per_frame = [(n, dets.for_frame(n)) for n in range(1, dets.last_frame + 1)]
            for name, (rows, secs) in boxmot_rows(args.boxmot, per_frame, image_size_of(seq)).items():
                m = score(seq / "gt" / "gt.txt", rows, dets.last_frame)
                print(line(f"boxmot {name} on {seq.name}", m, f"{dets.last_frame / secs:.0f} fps"), flush=True)


if __name__ == "__main__":
    main()
