"""The video pipeline: frames -> detector -> ReID features of the boxes -> tracker -> outputs.

``run_tracking`` does one camera. Outputs (all optional, written atomically): MOTChallenge
results, tracklets (``tracklets.npz`` + ``tracklets.json``), best crops, an annotated MP4, and
each tracklet's mean feature added to a :class:`~reidkit.retrieval.Gallery` with camera, time
and track id. Time is split into decode, detect, embed, track and output (best crops, video
frames), so the slow stage is known; decoding and detection run a frame or two ahead in a
thread, so the stages overlap and their seconds add up to more than the wall time.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ..detection.base import Detections
from ..fileio import atomic_write, atomic_write_text
from ..tracking import TrackerConfig, Tracklet
from ..tracking.base import TRACKERS
from ..tracking.mot import write_mot
from .sources import FrameSource

MIN_CROP = 8  # pixels: smaller boxes are tracked by motion only
#: Frames a track's ReID feature lasts when nothing else needs it re-embedded: on PETS09 frames
#: 1-400 from 2 to 20 gives the same HOTA (59-60) at 3.4 down to 1.0 crops a frame; 30 loses 7.
REID_EVERY = 10


@dataclass
class TrackingResult:
    tracklets: list[Tracklet]
    frames: int
    seconds: dict[str, float]
    reentries: int
    problems: list[str] = field(default_factory=list)
    crops_embedded: int = 0
    wall_seconds: float = 0.0  # the whole loop; stages overlap (detection runs ahead in a thread)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / max(self.wall_seconds or sum(self.seconds.values()), 1e-9)

    def summary(self) -> dict[str, Any]:
        total = max(sum(self.seconds.values()), 1e-9)
        return {"frames": self.frames, "tracks": len({t.track_id for t in self.tracklets}),
                "tracklets": len(self.tracklets), "reentries_restored": self.reentries, "crops_embedded": self.crops_embedded,
                "fps": self.fps,
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "share": {k: round(v / total, 3) for k, v in self.seconds.items()},
                "problems": self.problems, "outputs": self.outputs}


def crops_of(frame: np.ndarray, boxes: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Crops of the boxes (clipped to the frame) and which boxes gave one of at least MIN_CROP px."""
    h, w = frame.shape[:2]
    crops, ok = [], np.zeros(len(boxes), bool)
    for i, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if x2 - x1 >= MIN_CROP and y2 - y1 >= MIN_CROP:
            crops.append(frame[y1:y2, x1:x2])
            ok[i] = True
    return crops, ok


def detected_ahead(source: FrameSource, detect: Callable[[np.ndarray, int], Detections], seconds: dict,
                   ahead: int = 2) -> Iterator[tuple[int, Optional[np.ndarray], Detections]]:
    """``(number, frame, detections)`` of each frame, decoded and detected in a thread up to
    ``ahead`` frames before the caller needs them: detection of the next frame overlaps the
    embedding and tracking of this one (onnxruntime and OpenCV let go of the GIL)."""
    done = object()
    queue: Queue = Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            it = iter(source)
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    number, frame = next(it)
                except StopIteration:
                    break
                seconds["decode"] += time.perf_counter() - start
                start = time.perf_counter()
                det = detect(frame, number)
                seconds["detect"] += time.perf_counter() - start
                queue.put((number, frame, det))
            queue.put(done)
        except BaseException as e:  # handed to the caller, raised there
            queue.put(e)

    worker = threading.Thread(target=produce, name="reidkit-detect", daemon=True)
    worker.start()
    try:
        while True:
            item = queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get(timeout=0.05)
            except Empty:
                pass


def run_tracking(source: FrameSource, detect: Callable[[np.ndarray, int], Detections], embedder=None,
                 config: Optional[TrackerConfig] = None, camera: str = "0", output: Optional[Path] = None,
                 video: bool = True, identities=None, progress: Optional[Callable[[int], None]] = None,
                 camera_motion=None, tracker: str = "reidkit") -> TrackingResult:
    """Track people through ``source``; ``detect(frame, number)`` gives each frame's boxes.

    ``embedder`` (an :class:`~reidkit.inference.Embedder`) adds appearance; without it the tracker
    is motion-only; the ``tracker`` (a ``TRACKERS`` name) picks the boxes to embed
    (``config.appearance_refresh``, see :meth:`Tracker.needs_appearance`). ``camera_motion``
    (a :class:`~reidkit.tracking.camera_motion.CameraMotion`) compensates a moving camera. A
    source may yield ``None`` frames (public detections without video): then there are no crops,
    features or video, only tracks. ``identities`` (an
    :class:`~reidkit.mtmc.online.OnlineIdentities`) adds each tracklet to its gallery, in the
    order they finished, with a global id.
    """
    config = config or TrackerConfig()
    tracker = TRACKERS.get(tracker)(config, camera)
    best: dict[tuple[int, int], tuple[float, np.ndarray]] = {}  # (track id, first frame) -> (score, crop)
    seconds = {"decode": 0.0, "detect": 0.0, "embed": 0.0, "track": 0.0, "output": 0.0}
    annotator = None
    rows: list[tuple[int, int, np.ndarray, float]] = []
    frames = embedded = 0
    span: list[int] = []  # first and last frame number seen
    began = time.perf_counter()
    if source.size is not None:  # public detections: the size from seqinfo.ini
        tracker.set_view(*source.size)
    for number, frame, det in detected_ahead(source, detect, seconds):
        frames += 1
        if frames == 1 and frame is not None:
            tracker.set_view(frame.shape[1], frame.shape[0])
        span[1:] = [number] if span else [number, number]
        det = det[det.score >= config.low_score]
        start = time.perf_counter()
        warp = camera_motion.estimate(frame, det.xyxy) if camera_motion is not None and frame is not None else None
        seconds["track"] += time.perf_counter() - start
        feats = None
        start = time.perf_counter()
        if embedder is not None and frame is not None and len(det):
            wanted = tracker.needs_appearance(det, number, warp)
            crops, ok = crops_of(frame, det.xyxy[wanted])
            feats = np.full((len(det), embedder.dim), np.nan, np.float32)
            if crops:
                idx = np.flatnonzero(wanted)[ok]
                feats[idx] = embedder.embed(crops)
                embedded += len(crops)
        seconds["embed"] += time.perf_counter() - start
        start = time.perf_counter()
        active = tracker.update(det, feats, number, warp)
        seconds["track"] += time.perf_counter() - start
        start = time.perf_counter()
        if frame is not None:
            for track in active:
                key = (track.id, track.frames[0])
                if track.scores[-1] > best.get(key, (-1.0,))[0]:
                    crop, ok = crops_of(frame, track.boxes[-1][None])
                    if ok[0]:
                        best[key] = (track.scores[-1], crop[0].copy())
            if output is not None and video:
                if annotator is None:
                    from .annotate import VideoAnnotator

                    annotator = VideoAnnotator(output / "tracks.mp4", source.fps, (frame.shape[1], frame.shape[0]))
                annotator.write(frame, [(t.id, t.boxes[-1]) for t in active], number, camera)
        seconds["output"] += time.perf_counter() - start
        if progress is not None:
            progress(1)
    wall = time.perf_counter() - began
    tracklets = [replace(t, crop=best.get((t.track_id, int(t.frames[0])), (None, t.crop))[1])
                 for t in tracker.finish()]
    for t in tracklets:
        rows += [(int(f), t.track_id, b, float(s)) for f, b, s in zip(t.frames, t.boxes, t.scores)]
    result = TrackingResult(tracklets, frames, seconds, tracker.reentries, list(source.problems), embedded, wall)
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        result.outputs["mot"] = str(write_mot(output / "tracks.txt", rows))
        saved, crop_paths = save_tracklets(output, tracklets, camera, source.fps, span, config.distance_scale)
        result.outputs.update(saved)
        if annotator is not None:
            result.outputs["video"] = str(annotator.close())
    else:
        crop_paths = [None] * len(tracklets)
    if identities is not None:
        assigned = add_to_identities(identities, tracklets, crop_paths, source.fps)
        result.outputs["gallery_items"] = str(len(assigned))
        result.outputs["identities_matched"] = str(sum(a.matched for _, a in assigned))
        if output is not None:
            result.outputs["identities"] = str(write_identities(output / "identities.csv", assigned))
    return result


def save_tracklets(output: Path, tracklets: list[Tracklet], camera: str, fps: float, span: Sequence[int] = (),
                   distance_scale: float = 1.0) -> tuple[dict[str, str], list[Optional[str]]]:
    """``tracklets.npz`` (per-frame arrays, stacked, with offsets), ``tracklets.json`` (with the
    run's first and last frame, ``span``, and the features' ``distance_scale``, so that `reid mtmc`
    reads fixed thresholds in the tracker's units) and best crops; the written paths and each
    tracklet's crop path."""
    import io

    from PIL import Image

    crops = output / "crops"
    entries, arrays = [], {"frames": [], "boxes": [], "scores": [], "observed": [], "features": [], "mean_features": []}
    offset = 0
    for i, t in enumerate(tracklets):
        crop_path = None
        if t.crop is not None:
            crop_path = crops / f"{camera}_{t.track_id:05d}_{i:05d}.jpg"
            buf = io.BytesIO()
            Image.fromarray(t.crop).save(buf, format="JPEG", quality=90)
            atomic_write(crop_path, lambda f, b=buf.getvalue(): f.write(b))
        entries.append({"index": i, "camera": camera, "track_id": t.track_id, "first_frame": int(t.frames[0]),
                        "last_frame": int(t.frames[-1]), "observations": len(t.frames),
                        "start_seconds": round((int(t.frames[0]) - 1) / fps, 3), "mean_score": float(t.scores.mean()),
                        "offset": offset, "crop": str(crop_path) if crop_path else None})
        offset += len(t.frames)
        arrays["frames"].append(t.frames)
        arrays["boxes"].append(t.boxes)
        arrays["scores"].append(t.scores)
        arrays["observed"].append(np.ones(len(t.frames), bool) if t.observed is None else t.observed)
    # Features row-aligned with the other arrays (NaN where a box was not embedded, or a tracklet
    # has none); mean_features one row per tracklet (NaN: no feature).
    dim = next((t.features.shape[1] for t in tracklets if t.features is not None), None)
    if dim is not None:
        for t in tracklets:
            arrays["features"].append(t.features if t.features is not None
                                      else np.full((len(t.frames), dim), np.nan, np.float32))
            mean = t.mean_feature
            arrays["mean_features"].append(mean if mean is not None else np.full(dim, np.nan, np.float32))
    packed = {k: np.concatenate(v) for k, v in arrays.items() if k != "mean_features" and v}
    if arrays["mean_features"]:
        packed["mean_features"] = np.stack(arrays["mean_features"])
    packed["track_ids"] = np.array([t.track_id for t in tracklets], np.int64)
    packed["offsets"] = np.array([e["offset"] for e in entries] + [offset], np.int64)
    npz = atomic_write(output / "tracklets.npz", lambda f: np.savez(f, **packed))
    js = atomic_write_text(output / "tracklets.json", json.dumps({"camera": camera, "fps": fps, "frames": list(span),
                                                                    "distance_scale": distance_scale,
                                                                    "tracklets": entries},
                                                                   indent=1))
    return {"tracklets": str(npz), "tracklets_json": str(js)}, [e["crop"] for e in entries]


def add_to_identities(identities, tracklets: list[Tracklet], crop_paths: list[Optional[str]], fps: float
                      ) -> list[tuple[Tracklet, Any]]:
    """Each tracklet with a feature (the score-weighted mean of its best observations), in the
    order they finished, added to the identity gallery as one batch with camera, first frame, time span,
    track id and best crop; (tracklet, :class:`~reidkit.mtmc.online.Assignment`) pairs."""
    from ..mtmc.tracklets import TrackletRecord, tracklet_feature

    order = sorted(range(len(tracklets)), key=lambda i: (int(tracklets[i].frames[-1]), int(tracklets[i].frames[0])))
    kept, records, metas = [], [], []
    for i in order:
        t = tracklets[i]
        feature = tracklet_feature(t.features, t.scores, t.observed) if t.features is not None else None
        if feature is None:
            continue
        first, last = int(t.frames[0]), int(t.frames[-1])
        kept.append(t)
        records.append(TrackletRecord(t.camera, int(t.track_id), (first - 1) / fps, (last - 1) / fps, feature,
                                      first, last))
        metas.append({"frame": first, "source": str(Path(crop_paths[i]).resolve()) if crop_paths[i] else None})
    return list(zip(kept, identities.assign_batch(records, metas)))


def write_identities(path: Path, assigned: list[tuple[Tracklet, Any]]) -> Path:
    """``camera,track_id,global_id`` per tracklet (one row per track), as `reid mtmc` writes it."""
    rows = dict.fromkeys((t.camera, int(t.track_id), a.identity_id) for t, a in assigned)
    text = "camera,track_id,global_id\n" + "".join(f"{c},{k},{g}\n" for c, k, g in rows)
    return atomic_write_text(path, text)
