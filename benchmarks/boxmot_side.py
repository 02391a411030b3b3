#!/usr/bin/env python
"""Run boxmot's motion trackers on saved detections, in its own process (boxmot is AGPL-3.0: it is
never imported by reidkit, only run beside it when a benchmark is given a separate install).

    PYTHONPATH=BOXMOT_INSTALL python benchmarks/boxmot_side.py DETS.npz OUT.npz

``DETS.npz`` holds ``frames`` (F,), ``offsets`` (F + 1,) and ``boxes`` (N, 5: x1, y1, x2, y2,
score) and ``image_size`` (height, width); ``OUT.npz`` gets, per tracker, rows (frame, id, x1,
y1, x2, y2, score). Thresholds as in ../shared/data READMEs: low 0.0 (ByteTrack's second pass
takes every box), new tracks from 0.3.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def trackers():
    from boxmot import ByteTrack, OcSort

    return {"ByteTrack": lambda: ByteTrack(min_conf=0.0, track_thresh=0.3),
            "OC-SORT": lambda: OcSort(min_conf=0.0, det_thresh=0.3)}


def main() -> None:
    dets_path, out_path = sys.argv[1], sys.argv[2]
    data = np.load(dets_path)
    frames, offsets, boxes = data["frames"], data["offsets"], data["boxes"]
    image = np.zeros((*data["image_size"], 3), np.uint8)
    out, seconds = {}, {}
    for name, make in trackers().items():
        tracker, rows = make(), []
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            chunk = boxes[offsets[i]:offsets[i + 1]]
            dets = np.concatenate([chunk, np.zeros((len(chunk), 1), np.float32)], axis=1)  # class 0
            tracks = tracker.update(dets, image)
            for t in np.asarray(tracks).reshape(-1, 8):
                rows.append([frame, t[4], t[0], t[1], t[2], t[3], t[5]])
        seconds[name] = time.perf_counter() - start
        out[name] = np.asarray(rows, np.float64).reshape(-1, 7)
    np.savez(out_path, **out, **{f"{k}_seconds": v for k, v in seconds.items()})


if __name__ == "__main__":
    main()
