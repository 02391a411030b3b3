"""A ReID evaluation split cut from a labelled video: ground-truth boxes of earlier frames become the
gallery, those of later frames the queries, so a model can be measured on the user's own camera.

The two time ranges get different camera numbers (gallery c1, query c2): under the Market-1501
protocol a gallery image of the query's own camera is junk, and here "another camera" means
"another time" (the person has walked on, turned, changed size). Written in Market-1501 layout
(``query/``, ``bounding_box_test/``), which every command that takes ``--root`` reads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..fileio import OutputError, check_output_dir
from ..tracking.mot import read_mot
from .sources import open_source

GALLERY_CAMERA, QUERY_CAMERA = 1, 2


@dataclass
class CropSplitCounts:
    """What a split holds, and what was left out and why."""

    frames_read: int
    gallery_images: int
    query_images: int
    gallery_ids: int
    query_ids: int
    query_ids_not_in_gallery: int
    boxes_too_small: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def usable_truth(gt: np.ndarray) -> np.ndarray:
    """Ground-truth rows that show a person: rows flagged 0 (ignore) are dropped and, for MOT17-style
    files (classes 1-12 in column 8), everything that is not class 1 (pedestrian)."""
    keep = gt[:, 6] != 0
    classes = gt[:, 7]
    if np.all((classes >= 1) & (classes <= 12) & (classes == np.round(classes))) and np.any(classes > 1):
        keep &= classes == 1
    return gt[keep]


def cut_crop_split(video: str | Path, gt_path: str | Path, out: str | Path, query_from: int, start: int = 1,
                   end: Optional[int] = None, every: int = 1, min_height: int = 0,
                   progress: bool = False) -> CropSplitCounts:
    """Write ``out/bounding_box_test`` (frames ``start``..``query_from-1``) and ``out/query``
    (frames ``query_from``..``end``), every ``every``-th frame, boxes clipped to the frame and at
    least ``min_height`` pixels tall. Query ids never seen in the gallery are left out (they have no
    right answer). ``out`` appears whole or not at all; it must not exist or be empty."""
    if not start < query_from:
        raise ValueError(f"--query-from {query_from} must be after --start {start}: the gallery is the frames "
                         "before it")
    if end is not None and end < query_from:
        raise ValueError(f"--end {end} is before --query-from {query_from}: no query frames")
    if every < 1:
        raise ValueError(f"--every must be >= 1, got {every}")
    out = check_output_dir(out, "--output")
    if out.exists() and any(out.iterdir()):
        raise OutputError(f"--output {out} is not empty: give a new folder (a split is written whole)")
    gt = usable_truth(read_mot(gt_path, "ground truth"))
    last = int(gt[:, 0].max()) if end is None else end
    gt = gt[(gt[:, 0] >= start) & (gt[:, 0] <= last) & ((gt[:, 0] - start) % every == 0)]
    if not len(gt):
        raise ValueError(f"{gt_path}: no usable ground-truth boxes in frames {start}-{last}")
    gallery_ids = {int(i) for i in gt[gt[:, 0] < query_from, 1]}
    query_rows = gt[gt[:, 0] >= query_from]
    dropped_ids = {int(i) for i in query_rows[:, 1]} - gallery_ids
    by_frame: dict[int, np.ndarray] = {}
    for f in np.unique(gt[:, 0]).astype(int):
        rows = gt[gt[:, 0] == f]
        by_frame[int(f)] = rows if f < query_from else rows[np.isin(rows[:, 1], list(gallery_ids))]

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts = _write_crops(video, by_frame, tmp, query_from, start, last, every, min_height, progress)
        if counts["gallery"] == 0 or counts["query"] == 0:
            raise ValueError(f"{video}: no {'gallery' if counts['gallery'] == 0 else 'query'} crops were cut "
                             f"(frames {start}-{last}, query from {query_from}, min height {min_height}): "
                             "does the ground truth belong to this video?")
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CropSplitCounts(counts["frames"], counts["gallery"], counts["query"], len(counts["gallery_ids"]),
                           len(counts["query_ids"]), len(dropped_ids), counts["small"])


def _write_crops(video, by_frame: dict[int, np.ndarray], folder: Path, query_from: int, start: int, last: int,
                 every: int, min_height: int, progress: bool) -> dict:
    from PIL import Image
    from tqdm import tqdm

    (folder / "bounding_box_test").mkdir()
    (folder / "query").mkdir()
    counts: dict = {"frames": 0, "gallery": 0, "query": 0, "small": 0, "gallery_ids": set(), "query_ids": set()}
    source = open_source(video, stride=every, start=start, limit=len(range(start, last + 1, every)))
    for number, frame in tqdm(source, total=source.frame_count, disable=not progress, desc="cutting crops",
                              unit="frame"):
        counts["frames"] += 1
        h, w = frame.shape[:2]
        is_query = number >= query_from
        for row in by_frame.get(number, ()):
            x1, y1 = max(0, int(round(row[2]))), max(0, int(round(row[3])))
            x2, y2 = min(w, int(round(row[2] + row[4]))), min(h, int(round(row[3] + row[5])))
            if y2 - y1 < max(min_height, 2) or x2 - x1 < 2:
                counts["small"] += 1
                continue
            pid = int(row[1])
            camera = QUERY_CAMERA if is_query else GALLERY_CAMERA
            name = f"{pid:04d}_c{camera}s1_{number:06d}_00.jpg"
            sub = "query" if is_query else "bounding_box_test"
            Image.fromarray(np.ascontiguousarray(frame[y1:y2, x1:x2])).save(folder / sub / name, quality=95)
            counts["query" if is_query else "gallery"] += 1
            counts["query_ids" if is_query else "gallery_ids"].add(pid)
    if source.problems:
        raise ValueError("; ".join(source.problems))
    if counts["frames"] == 0:
        raise ValueError(f"{video}: no frames in {start}-{last}")
    return counts
