#!/usr/bin/env python
"""Person detectors side by side on real frames: precision and recall at IoU 0.5, and time a frame.

Sequences: PETS09-S2L1 frames 1-400 (the frames of vtest.avi, ground truth from
``pets09-s2l1-dev``) and the MOT17 frames of ``mot17-mini`` (1920x1080 and 640x480). Detectors:
the SSDLite pedestrian model (300x300) and the bundled YOLOX-Nano at several input sizes, all in
one process, frame after frame, so the times compare.

Counting: recall is the share of ground-truth people with a detection at IoU >= 0.5; precision the
share of detections with a ground-truth box at IoU >= 0.5. MOT17: recall over pedestrians (class 1,
flag 1), precision against every annotated box (static people, reflections and the like are not
false positives), as the MOT17 rules treat them.

    python benchmarks/bench_detect.py --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        --data ../shared/data
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from reidkit.tracking.matching import iou_matrix

    return iou_matrix(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))


def pets_frames(video: Path, data: Path, limit: int):
    import cv2

    from reidkit.tracking.mot import read_mot

    gt = read_mot(data / "pets09-s2l1-dev" / "gt" / "gt.txt", "ground truth")
    cap = cv2.VideoCapture(str(video))
    for number in range(1, limit + 1):
        ok, bgr = cap.read()
        if not ok:
            break
        rows = gt[gt[:, 0] == number]
        boxes = rows[:, 2:6].copy()
        boxes[:, 2:] += boxes[:, :2]
        yield number, np.ascontiguousarray(bgr[:, :, ::-1]), boxes, boxes


def mot17_frames(data: Path):
    from reidkit.images import read_image
    from reidkit.tracking.mot import read_mot

    for seq in sorted((data / "mot17-mini").glob("MOT17-*")):
        gt = read_mot(seq / "gt" / "gt.txt", "ground truth")
        for path in sorted((seq / "img1").glob("*.jpg")):
            number = int(path.stem)
            rows = gt[gt[:, 0] == number]
            boxes = rows[:, 2:6].copy()
            boxes[:, 2:] += boxes[:, :2]
            people = boxes[(rows[:, 7] == 1) & (rows[:, 6] == 1)]
            yield f"{seq.name}/{number}", read_image(path, "cv2"), people, boxes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", type=Path, required=True, help="vtest.avi (PETS09-S2L1).")
    ap.add_argument("--data", type=Path, required=True, help="../shared/data (pets09-s2l1-dev, mot17-mini).")
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--score", type=float, nargs="+", default=[0.3, 0.5])
    ap.add_argument("--pets-sizes", nargs="+", default=["416x416", "512x384", "640x480"])
    ap.add_argument("--mot17-sizes", nargs="+", default=["416x416", "640x384", "1088x608", "1920x1088"])
    args = ap.parse_args()

    from reidkit.detection import SSDLiteDetector
    from reidkit.detection.yolo import YoloOnnxDetector, bundled_yolox, parse_size

    low = min(args.score)
    for name, frames, sizes in (("PETS09-S2L1 frames 1-%d" % args.frames,
                                 lambda: pets_frames(args.video, args.data, args.frames), args.pets_sizes),
                                ("MOT17 mini (39 frames)", lambda: mot17_frames(args.data), args.mot17_sizes)):
        detectors = {"SSDLite 300x300": SSDLiteDetector(score_threshold=low)}
        for size in sizes:
            w, h = parse_size(size)
            detectors[f"YOLOX-Nano {w}x{h}"] = YoloOnnxDetector(bundled_yolox(), score_threshold=low, style="yolox",
                                                                input_size=(h, w))
        counts = {d: {s: [0, 0, 0, 0] for s in args.score} for d in detectors}  # found, people, matched, dets
        seconds = {d: 0.0 for d in detectors}
        n = 0
        for _, frame, people, annotated in frames():
            n += 1
            for dname, det in detectors.items():
                start = time.perf_counter()
                found = det.detect(frame)
                seconds[dname] += time.perf_counter() - start
                for s in args.score:
                    boxes = found.xyxy[found.score >= s]
                    c = counts[dname][s]
                    c[0] += int((iou(people, boxes).max(1, initial=0) >= 0.5).sum())
                    c[1] += len(people)
                    c[2] += int((iou(annotated, boxes).max(0, initial=0) >= 0.5).sum())
                    c[3] += len(boxes)
        print(f"\n{name}: precision / recall at IoU 0.5, by score threshold; ms a frame (same run)")
        print("| detector | " + " | ".join(f"score {s}" for s in args.score) + " | ms a frame |")
        print("|---|" + "---|" * (len(args.score) + 1))
        for dname in detectors:
            cells = []
            for s in args.score:
                f, p, m, d = counts[dname][s]
                cells.append(f"{m / max(d, 1):.3f} / {f / max(p, 1):.3f}")
            print(f"| {dname} | " + " | ".join(cells) + f" | {1000 * seconds[dname] / max(n, 1):.1f} |", flush=True)


if __name__ == "__main__":
    main()
