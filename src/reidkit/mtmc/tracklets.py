"""Tracklets as cross-camera association sees them: camera, track id, time span, one feature.

A `reid track` output folder holds ``tracklets.npz`` (per-observation boxes, scores, features,
stacked with offsets) and ``tracklets.json`` (camera, fps, and per tracklet its frames and best
crop); :func:`read_track_output` turns it into :class:`TrackletRecord` s. A tracklet's feature is
the score-weighted mean of its best observations (:func:`tracklet_feature`): the confident,
observed (not interpolated) boxes, which are the least occluded ones. numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..evaluation.distance import l2_normalize

#: Observations a tracklet's feature is averaged over: the highest-scoring ones.
BEST_OBSERVATIONS = 10


@dataclass(frozen=True)
class TrackletRecord:
    """One tracklet of one camera. ``start``/``end`` are seconds from the start of the camera's
    video (frames / fps), so topologies can state travel times."""

    camera: str
    track_id: int
    start: float
    end: float
    feature: np.ndarray  # (D,) unit vector
    first_frame: int = 0
    last_frame: int = 0
    crop: Optional[str] = None


def tracklet_feature(features: np.ndarray, scores: np.ndarray, observed: Optional[np.ndarray] = None,
                     best: int = BEST_OBSERVATIONS) -> Optional[np.ndarray]:
    """The unit-length, score-weighted mean of the ``best`` highest-scoring observed rows that have
    a feature (rows of NaN have none); None when no row has one."""
    features = np.asarray(features, np.float32)
    usable = np.isfinite(features).all(1)
    if observed is not None:
        usable &= np.asarray(observed, bool)
    if not usable.any():
        return None
    rows = np.flatnonzero(usable)
    rows = rows[np.argsort(-np.asarray(scores)[rows], kind="stable")[:best]]
    weights = np.maximum(np.asarray(scores, np.float32)[rows], 1e-6)
    return l2_normalize((l2_normalize(features[rows]) * weights[:, None]).sum(0))


def read_track_output(folder: str | Path, camera: Optional[str] = None) -> list[TrackletRecord]:
    """The tracklets a `reid track` run wrote to ``folder`` (``camera`` overrides the recorded
    name); tracklets without any feature are left out. Clear errors for a folder that is not one."""
    folder = Path(folder)
    meta_path, npz_path = folder / "tracklets.json", folder / "tracklets.npz"
    if not meta_path.is_file() or not npz_path.is_file():
        raise FileNotFoundError(f"{folder}: not a `reid track` output (tracklets.json and tracklets.npz missing)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        entries, fps = meta["tracklets"], float(meta["fps"]) or 25.0
        name = camera or str(meta["camera"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{meta_path}: not a tracklets file written by `reid track` ({e})") from None
    with np.load(npz_path) as npz:
        if "features" not in npz.files:
            raise ValueError(f"{folder}: its tracklets have no ReID features (tracked with --reid none?): "
                             "track again with a ReID model")
        arrays = {k: npz[k] for k in ("features", "scores", "observed", "frames", "offsets")}
    offsets = arrays["offsets"]
    if len(offsets) != len(entries) + 1 or offsets[-1] != len(arrays["features"]):
        raise ValueError(f"{npz_path}: {len(entries)} tracklets in tracklets.json but {len(offsets) - 1} in the "
                         "arrays (files from two different runs?)")
    records = []
    for i, entry in enumerate(entries):
        a, b = int(offsets[i]), int(offsets[i + 1])
        feature = tracklet_feature(arrays["features"][a:b], arrays["scores"][a:b], arrays["observed"][a:b])
        if feature is None:
            continue
        first, last = int(arrays["frames"][a]), int(arrays["frames"][b - 1])
        records.append(TrackletRecord(name, int(entry["track_id"]), (first - 1) / fps, (last - 1) / fps, feature,
                                      first, last, entry.get("crop")))
    return merge_same_track(records)


def merge_same_track(records: list[TrackletRecord]) -> list[TrackletRecord]:
    """One record per (camera, track id): the tracker already said that the pieces of a track it
    re-identified after an absence are one person (their mean feature, the whole span)."""
    groups: dict[tuple[str, int], list[TrackletRecord]] = {}
    for r in records:
        groups.setdefault((r.camera, r.track_id), []).append(r)
    merged = []
    for (camera, track_id), parts in groups.items():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        parts.sort(key=lambda r: r.start)
        merged.append(TrackletRecord(camera, track_id, parts[0].start, max(r.end for r in parts),
                                     l2_normalize(np.mean([r.feature for r in parts], 0)), parts[0].first_frame,
                                     max(r.last_frame for r in parts), next((r.crop for r in parts if r.crop), None)))
    return merged
