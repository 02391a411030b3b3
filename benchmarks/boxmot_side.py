#!/usr/bin/env python
"""Run boxmot's trackers on saved detections, in its own process (boxmot is AGPL-3.0: it is never
imported by reidkit, only run beside it when a benchmark is given a separate install).

    PYTHONPATH=BOXMOT_INSTALL python benchmarks/boxmot_side.py DETS.npz OUT.npz [--video V] [--public]

``DETS.npz`` holds ``frames`` (F,), ``offsets`` (F + 1,), ``boxes`` (N, 5: x1, y1, x2, y2, score),
``image_size`` (height, width) and optionally ``feats`` (N, D): ReID features of the boxes, which
BoT-SORT then uses (``BoT-SORT+ReID``). ``OUT.npz`` gets, per tracker, rows (frame, id, x1, y1, x2,
y2, score) and its seconds. With ``--video``, BoT-SORT gets the frames for its camera-motion
compensation. Thresholds: boxmot's own defaults (made for detector probabilities such as
YOLOX's); ``--public`` uses those of ../shared/data for min-max rescaled det.txt scores (low 0.0,
new tracks from 0.3).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


class GivenFeatures:
    """A ReID "model" for boxmot that answers with the features computed beforehand for this
    frame's boxes (reidkit's default model), looked up by box."""

    def __init__(self):
        self.boxes, self.feats = np.zeros((0, 4)), np.zeros((0, 1))

    def get_features(self, xyxys, img):
        xyxys = np.asarray(xyxys, np.float64).reshape(-1, 4)
        if not len(xyxys):
            return np.zeros((0, self.feats.shape[1]), np.float32)
        nearest = np.abs(xyxys[:, None, :] - self.boxes[None, :, :]).sum(2).argmin(1)
        return self.feats[nearest]


REID = GivenFeatures()


def trackers(public: bool, with_frames: bool, with_feats: bool):
    from boxmot import BotSort, ByteTrack, OcSort

    if public:
        made = {"ByteTrack": lambda: ByteTrack(min_conf=0.0, track_thresh=0.3),
                "OC-SORT": lambda: OcSort(min_conf=0.0, det_thresh=0.3),
                "BoT-SORT": lambda: BotSort(track_low_thresh=0.0, track_high_thresh=0.3, new_track_thresh=0.3,
                                            use_cmc=False, use_embeddings=False)}
    else:
        made = {"ByteTrack": ByteTrack, "OC-SORT": OcSort,
                "BoT-SORT": lambda: BotSort(use_cmc=with_frames, use_embeddings=False)}
    if with_feats:
        made["BoT-SORT+ReID"] = lambda: BotSort(use_cmc=with_frames and not public, use_embeddings=True,
                                                reid_model=REID)
    return made


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dets")
    ap.add_argument("out")
    ap.add_argument("--video")
    ap.add_argument("--public", action="store_true")
    args = ap.parse_args()
    data = np.load(args.dets)
    frames, offsets, boxes = data["frames"], data["offsets"], data["boxes"]
    feats = data["feats"] if "feats" in data.files else None
    blank = np.zeros((*data["image_size"], 3), np.uint8)
    pictures = {}
    if args.video:
        import cv2

        cap = cv2.VideoCapture(args.video)
        for number in range(1, int(frames.max()) + 1):
            ok, bgr = cap.read()
            if not ok:
                break
            pictures[number] = bgr
    out = {}
    for name, make in trackers(args.public, bool(pictures), feats is not None).items():
        tracker, rows = make(), []
        start = time.perf_counter()
        for i, frame in enumerate(frames):
            chunk = boxes[offsets[i]:offsets[i + 1]]
            dets = np.concatenate([chunk, np.zeros((len(chunk), 1), np.float32)], axis=1)  # class 0
            if feats is not None:
                REID.boxes, REID.feats = chunk[:, :4].astype(np.float64), feats[offsets[i]:offsets[i + 1]]
            tracks = tracker.update(dets, pictures.get(int(frame), blank))
            for t in np.asarray(tracks).reshape(-1, 8):
                rows.append([frame, t[4], t[0], t[1], t[2], t[3], t[5]])
        out[f"{name}_seconds"] = time.perf_counter() - start
        out[name] = np.asarray(rows, np.float64).reshape(-1, 7)
    np.savez(args.out, **out)


if __name__ == "__main__":
    main()
