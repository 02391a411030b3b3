#!/usr/bin/env python
"""How sensitive tracking is to the ReID model and its distance scale: HOTA / IDF1 on PETS09-S2L1
(vtest.avi) with the default detector, for each (model, distance_scale), at several frame strides.

One ID swap on a short clip moves HOTA by several points, so one run says little about a setting.
Tracking the same frames at stride 1, and at strides 2 and 3 from frames 1 and 2, gives five sequences of
crossings; the mean over them is the number to compare. Boxes are detected once and every
confident box is embedded once per model; each run then replays the tracker on them, embedding
only the boxes `reid track` would embed (``Tracker.needs_appearance``), which gives the same
tracks as `reid track` (checked: stride 1 with the shipped model is identical) in about 2 s a run.

    python benchmarks/bench_tracker_params.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \\
        --gt ../shared/data/pets09-s2l1-dev/gt/gt.txt --reid default histogram other.pth \\
        --scales 1.0 1.3 1.6
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from reidkit.detection.base import Detections
from reidkit.pipeline import open_source
from reidkit.pipeline.components import make_detector, make_embedder
from reidkit.pipeline.track import crops_of
from reidkit.tracking import TrackerConfig
from reidkit.tracking.mot import evaluate_mot, write_mot
from reidkit.tracking.tracker import Tracker

REID_EVERY = 10  # `reid track`'s default --reid-every


def embed_all(video: Path, frames: int, boxes: dict, embedder) -> dict:
    """Per frame, the feature of every box of score >= the tracker's high_score (NaN elsewhere)."""
    high = TrackerConfig().high_score
    out = {}
    for number, frame in open_source(video, stride=1, start=1, limit=frames):
        xyxy, score = boxes[number]
        feats = np.full((len(xyxy), embedder.dim), np.nan, np.float32)
        keep = np.flatnonzero(score >= high)
        crops, ok = crops_of(frame, xyxy[keep])
        if crops:
            feats[keep[ok]] = embedder.embed(crops)
        out[number] = feats
    return out


def replay(numbers: list[int], boxes: dict, feats: dict, config: TrackerConfig, gt_lines: list[str],
           view: tuple[int, int]) -> dict:
    """Track ``numbers`` on the cached boxes and features; score against the ground truth of those
    frames, renumbered 1..len(numbers) as a sequence of its own."""
    tracker = Tracker(config, "vtest")
    tracker.set_view(*view)  # as `reid track` does from the first frame
    for n in numbers:
        xyxy, score = boxes[n]
        keep = score >= config.low_score
        det = Detections(xyxy[keep], score[keep])
        f = feats[n][keep].copy()
        if len(det):
            f[~tracker.needs_appearance(det, n)] = np.nan
        tracker.update(det, f if len(det) else None, n)
    position = {n: i + 1 for i, n in enumerate(numbers)}
    rows = [(position[int(fr)], t.track_id, b, float(s)) for t in tracker.finish()
            for fr, b, s in zip(t.frames, t.boxes, t.scores) if int(fr) in position]
    with tempfile.TemporaryDirectory() as tmp:
        pred = write_mot(Path(tmp) / "tracks.txt", rows)
        gt = Path(tmp) / "gt.txt"
        lines = []
        for line in gt_lines:
            first, rest = line.split(",", 1)
            if int(float(first)) in position:
                lines.append(f"{position[int(float(first))]},{rest}")
        gt.write_text("".join(lines))
        return evaluate_mot(gt, pred, len(numbers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--gt", type=Path, required=True, help="MOTChallenge gt.txt of the video")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--reid", nargs="+", default=["default"],
                        help="models as `reid track --reid` takes them, or `histogram` (colour histograms)")
    parser.add_argument("--scales", nargs="+", type=float, default=None,
                        help="distance_scale values to try (default: each model's own card value)")
    parser.add_argument("--strides", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()

    detector, _, _ = make_detector("yolox", 0.1, have_frames=True, input_size=None)
    boxes = {}
    for number, frame in open_source(args.video, stride=1, start=1, limit=args.frames):
        d = detector(frame, number)
        boxes[number] = (d.xyxy.copy(), d.score.copy())
        view = (frame.shape[1], frame.shape[0])
    gt_lines = [line for line in args.gt.read_text().splitlines(keepends=True) if line.strip()]
    sequences = {}
    for stride in args.strides:
        for phase in range(1, min(stride, 2) + 1):
            sequences[f"stride {stride}" + (f"/{phase}" if stride > 1 else "")] = list(
                range(phase, args.frames + 1, stride))

    for model in args.reid:
        if model == "histogram":
            from reidkit.modeling.color_histogram import ColorHistogramEmbedder

            embedder, own_scale = ColorHistogramEmbedder(), 1.0
        else:
            embedder = make_embedder(model)
            own_scale = embedder.card.distance_scale if embedder.card is not None else 1.0
        feats = embed_all(args.video, args.frames, boxes, embedder)
        for scale in args.scales or [own_scale]:
            config = replace(TrackerConfig.for_scores(True), appearance_refresh=REID_EVERY, distance_scale=scale)
            scores = {name: replay(numbers, boxes, feats, config, gt_lines, view) for name, numbers in sequences.items()}
            cells = "  ".join(f"{name} {s['HOTA']:4.1f}/{s['IDF1']:4.1f}" for name, s in scores.items())
            mean = np.mean([s["HOTA"] for s in scores.values()])
            print(f"{Path(model).name:20s} scale {scale:4.2f}  {cells}  mean HOTA {mean:4.1f}", flush=True)


if __name__ == "__main__":
    main()
