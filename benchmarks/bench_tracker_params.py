#!/usr/bin/env python
"""How sensitive tracking is to the tracker's appearance settings, per ReID model: one row per
(model, setting) on PETS09-S2L1 (vtest.avi) with the default detector, every box embedded.

A better ReID model can track worse with thresholds tuned on another model; this shows whether a
change of model or of a threshold moves HOTA beyond what one ID swap is worth on a short clip.

    python benchmarks/bench_tracker_params.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \\
        --gt ../shared/data/pets09-s2l1-dev/gt/gt.txt --reid default /path/to/other.pth
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from reidkit.pipeline import open_source, run_tracking
from reidkit.pipeline.components import make_detector, make_embedder
from reidkit.tracking import TrackerConfig
from reidkit.tracking.mot import evaluate_mot

SETTINGS = {"defaults": {}, "appearance_distance 0.15": {"appearance_distance": 0.15},
            "appearance_distance 0.35": {"appearance_distance": 0.35},
            "feature_momentum 0.5": {"feature_momentum": 0.5},
            "feature_momentum 0.95": {"feature_momentum": 0.95}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--gt", type=Path, required=True, help="MOTChallenge gt.txt of the video")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--reid", nargs="+", default=["default"], help="models as `reid track --reid` takes them")
    args = parser.parse_args()

    detector, _, _ = make_detector("yolox", 0.1, have_frames=True, input_size=None)
    boxes: dict = {}

    def detect(frame, number):  # every run sees the same frames: detect each one once
        if number not in boxes:
            boxes[number] = detector(frame, number)
        return boxes[number]

    with tempfile.TemporaryDirectory() as tmp:
        gt = Path(tmp) / "gt.txt"  # the ground truth of the frames tracked
        gt.write_text("".join(line for line in args.gt.read_text().splitlines(keepends=True)
                              if line.strip() and int(float(line.split(",")[0])) <= args.frames))
        runs = 0
        for model in args.reid:
            embedder = make_embedder(model)
            for name, change in SETTINGS.items():
                runs += 1
                out = Path(tmp) / f"run{runs}"
                config = replace(TrackerConfig.for_scores(True), **change)
                run_tracking(open_source(args.video, stride=1, start=1, limit=args.frames), detect, embedder,
                             config, "vtest", out, video=False)
                scores = evaluate_mot(gt, out / "tracks.txt", args.frames)
                print(f"{Path(model).name:24s} {name:26s} " + "  ".join(
                    f"{k} {scores[k]:5.1f}" for k in ("HOTA", "AssA", "IDF1")) + f"  IDSW {scores['IDSW']}", flush=True)

if __name__ == "__main__":
    main()
