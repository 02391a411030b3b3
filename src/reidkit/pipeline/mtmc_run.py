"""`reid mtmc`: per-camera tracklets in, global identities out.

Each input is one camera: a `reid track` output folder (its tracklets and their features), or a
folder of tracklet crops laid out ``TRACK_ID/*.jpg|png`` (the camera is the folder's name; the
crops are embedded with the ReID model, a tracklet's feature is the mean of its crops'). The
tracklets are associated by :func:`reidkit.mtmc.associate`, and written:

* ``identities.csv``: ``camera,track_id,global_id``, one row per tracklet;
* ``tracks/<camera>.txt``: the camera's MOT file with global ids (`reid track` inputs);
* ``identities.json``: per identity its cameras, first and last time, best crop, appearances;
* ``index.html``: one row per identity, its appearances across cameras in time order;
* with ``gallery``: the global ids written into that gallery's items (by camera and track id),
  replacing the ones online matching gave, so searches answer with these identities.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..fileio import atomic_write_text
from ..data.datasets import IMAGE_SUFFIXES
from ..mtmc.associate import FALLBACK_THRESHOLD, Topology, associate
from ..mtmc.tracklets import TrackletRecord, read_track_output, tracklet_feature


@dataclass
class CameraInput:
    camera: str
    folder: Path
    records: list[TrackletRecord]
    tracks_file: Optional[Path]  # the MOT file of a `reid track` output
    distance_scale: float = 1.0  # of the model its features came from (see TrackerConfig)


def is_track_output(folder: Path) -> bool:
    return (folder / "tracklets.json").is_file()


def frames_span(folder: Path) -> Optional[list[int]]:
    """The first and last frame a `reid track` run over ``folder`` saw (None: not recorded)."""
    if not is_track_output(folder):
        return None
    span = json.loads((folder / "tracklets.json").read_text(encoding="utf-8")).get("frames")
    return [int(span[0]), int(span[1])] if span else None


def read_crop_folder(folder: Path, embedder) -> list[TrackletRecord]:
    """Tracklets from ``TRACK_ID/*.jpg|png`` sub-folders. Their times are unknown, so the k-th
    tracklet gets the instant k: one camera's tracklets never overlap and may be one person."""
    tracks = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.name)
    bad = [p.name for p in tracks if not p.name.lstrip("-").isdigit()]
    if bad:
        raise ValueError(f"{folder}: tracklet folders must be named by their track id (a number), got {bad[0]!r}")
    records = []
    for k, track in enumerate(tracks):
        images = sorted(p for p in track.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            continue
        feats, ok, _ = embedder.embed_files(images)
        if not ok:
            continue
        feature = tracklet_feature(feats, np.ones(len(ok)), best=len(ok))
        records.append(TrackletRecord(folder.name, int(track.name), float(k), float(k), feature, crop=str(images[ok[0]])))
    return records


def read_inputs(inputs: Sequence[Path], reid: str = "default") -> list[CameraInput]:
    """Every input as a camera, with clear errors for folders that are neither kind, cameras
    with no tracklets, and two inputs with one camera name."""
    embedder = None
    cameras: list[CameraInput] = []
    for folder in map(Path, inputs):
        if not folder.is_dir():
            raise FileNotFoundError(f"input {folder}: not a folder (give `reid track` outputs or tracklet crop folders)")
        if is_track_output(folder):
            records = read_track_output(folder)
            meta = json.loads((folder / "tracklets.json").read_text())
            camera = records[0].camera if records else meta["camera"]
            tracks = folder / "tracks.txt"
            entry = CameraInput(str(camera), folder, records, tracks if tracks.is_file() else None,
                                float(meta.get("distance_scale", 1.0)))
        else:
            if embedder is None:
                from ..inference.resolve import resolve_embedder

                embedder = resolve_embedder(reid, runtime="onnxruntime")
            entry = CameraInput(folder.name, folder, read_crop_folder(folder, embedder), None,
                                embedder.card.distance_scale if embedder.card is not None else 1.0)
        if not entry.records:
            raise ValueError(f"input {folder}: camera {entry.camera!r} has no tracklets with features or crops")
        clash = next((c for c in cameras if c.camera == entry.camera), None)
        if clash is not None:
            raise ValueError(f"inputs {clash.folder} and {folder} are both camera {entry.camera!r}: "
                             "each input must be its own camera (track with --camera NAME)")
        cameras.append(entry)
    if not cameras:
        raise ValueError("no inputs: give `reid track` output folders or tracklet crop folders, one per camera")
    return cameras


def run_mtmc(inputs: Sequence[Path], output: Path, reid: str = "default", threshold: Optional[float] = None,
             topology: Optional[Path] = None, rerank: bool = False, closed_world: bool = False,
             gallery: Optional[Path] = None) -> dict:
    """Associate the inputs' tracklets and write the outputs (module docstring); a summary."""
    if gallery is not None:
        from ..retrieval import Gallery

        Gallery.open(gallery).close()  # a missing or unreadable gallery fails before the work
    cameras = read_inputs(inputs, reid)
    topo = Topology.from_yaml(topology) if topology is not None else None
    if topo is not None:
        topo.check_cameras([c.camera for c in cameras], str(topology))
    records = [r for c in cameras for r in c.records]
    # a fixed distance reads in the tracker's units: the features' own scale (the median, should cameras differ)
    fallback = FALLBACK_THRESHOLD * float(np.median([c.distance_scale for c in cameras]))
    labels = associate(records, threshold, topo, rerank, closed_world, fallback=fallback) + 1  # global ids from 1
    output.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["camera", "track_id", "global_id"])
    writer.writerows([r.camera, r.track_id, int(g)] for r, g in zip(records, labels))
    atomic_write_text(output / "identities.csv", text.getvalue())
    next_id = int(labels.max()) + 1
    for cam in cameras:
        if cam.tracks_file is None:
            continue
        mapping = {r.track_id: int(g) for r, g in zip(records, labels) if r.camera == cam.camera}
        lines = []
        for line in cam.tracks_file.read_text().splitlines():
            parts = line.split(",")
            if len(parts) < 6:
                continue
            track_id = int(float(parts[1]))
            if track_id not in mapping:  # a track without features: its own identity
                mapping[track_id], next_id = next_id, next_id + 1
            lines.append(",".join([parts[0], str(mapping[track_id]), *parts[2:]]))
        atomic_write_text(output / "tracks" / f"{cam.camera}.txt", "\n".join(lines) + ("\n" if lines else ""))
    identities = []
    for g in np.unique(labels):
        members = sorted((r for r, lab in zip(records, labels) if lab == g), key=lambda r: (r.start, r.camera))
        identities.append({"global_id": int(g), "cameras": sorted({r.camera for r in members}),
                           "first": members[0].start, "last": max(r.end for r in members),
                           "crop": next((r.crop for r in members if r.crop), None),
                           "appearances": [{"camera": r.camera, "track_id": r.track_id, "start": r.start, "end": r.end,
                                            "first_frame": r.first_frame, "last_frame": r.last_frame, "crop": r.crop}
                                           for r in members]})
    inputs_seen = {c.camera: {"folder": str(c.folder.resolve()), "tracks": str(c.tracks_file.resolve())
                              if c.tracks_file is not None else None, "frames": frames_span(c.folder)} for c in cameras}
    atomic_write_text(output / "identities.json", json.dumps({"inputs": inputs_seen, "identities": identities},
                                                            indent=1))
    from ..viz.identities_page import write_identities_page

    write_identities_page(output / "index.html", identities, f"{len(identities)} identities in "
                          f"{len(cameras)} cameras")
    multi = sum(len(i["cameras"]) > 1 for i in identities)
    extra = {}
    if gallery is not None:
        extra["gallery_items"] = write_gallery_identities(gallery, records, labels)
    return {**extra, "cameras": [c.camera for c in cameras], "tracklets": len(records), "identities": len(identities),
            "in_several_cameras": multi, "outputs": {"identities": str(output / "identities.csv"),
                                                     "json": str(output / "identities.json"),
                                                     "page": str(output / "index.html")}}


def write_gallery_identities(folder: Path, records: Sequence[TrackletRecord], labels: np.ndarray) -> int:
    """Give the gallery's items of each tracklet (same camera and track id) its global id, in one
    transaction that first clears every other identity; how many items got one."""
    from ..retrieval import Gallery

    with Gallery.open(folder) as g:
        items = g.store.track_items()
        assignments = {i: int(label) for r, label in zip(records, labels) for i in items.get((r.camera, r.track_id), [])}
        g.set_identities(assignments, reset=True)
    return len(assignments)
