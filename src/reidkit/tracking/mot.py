"""MOTChallenge text files: reading detections and ground truth, writing tracks, evaluating.

Rows are ``frame, id, left, top, width, height, score, x, y, z`` (1-based frames, pixels).
Evaluation runs the ``trackeval`` library (HOTA, CLEAR MOT, identity metrics) on a temporary
folder in its MOTChallenge layout; ground truth whose eighth column holds MOT17 classes (1-12)
is scored under MOT17 rules, other ground truth (MOT15: world coordinates there) under MOT15 rules (distractor classes
and zero-marked boxes removed by trackeval's own preprocessing).
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..detection.base import Detections
from ..fileio import atomic_write_text


def read_mot(path: str | Path, what: str = "detections") -> np.ndarray:
    """A MOTChallenge file as a float64 (N, >=7) array, rows sorted by frame; clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a MOTChallenge text file (not UTF-8: {e.reason} at byte {e.start})") from None
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.replace(" ", "").split(",")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"{path}:{line_no}: not a MOTChallenge row (numbers separated by commas): "
                             f"{line[:80]!r}") from None
        if len(values) < 6:
            raise ValueError(f"{path}:{line_no}: {len(values)} values, expected at least 6 "
                             "(frame, id, left, top, width, height)")
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{path}:{line_no}: not a finite number in {line[:80]!r}")
        if values[0] < 1 or not values[0].is_integer():
            raise ValueError(f"{path}:{line_no}: frame {values[0]:g}: frames are whole numbers from 1")
        rows.append((values + [1.0, -1.0, -1.0, -1.0][len(values) - 6:])[:10] if len(values) < 10 else values[:10])
    if not rows:
        raise ValueError(f"{path}: no {what} in it (empty file)")
    arr = np.array(rows, np.float64)
    return arr[np.argsort(arr[:, 0], kind="stable")]


def sequence_image_size(seqinfo: Path) -> Optional[tuple[int, int]]:
    """(width, height) from a MOTChallenge ``seqinfo.ini`` (``imWidth``, ``imHeight``); None when
    the file or the keys are missing or unreadable: the size is a hint, never required."""
    import configparser

    info = configparser.ConfigParser()
    try:
        info.read(seqinfo)
        w, h = int(info["Sequence"]["imWidth"]), int(info["Sequence"]["imHeight"])
    except (configparser.Error, KeyError, ValueError, OSError, UnicodeDecodeError):
        return None
    return (w, h) if w > 0 and h > 0 else None


class MOTDetections:
    """Public detections from a ``det.txt``, served per frame as :class:`Detections`.

    MOT15 scores are not probabilities (about -0.8 to 139); when any score falls outside [0, 1]
    all are rescaled min-max over the file, so the tracker's thresholds mean the same thing.
    """

    name = "mot"

    def __init__(self, path: str | Path):
        rows = read_mot(path, "detections")
        scores = rows[:, 6]
        self.rescaled = bool(scores.min() < 0 or scores.max() > 1)
        if self.rescaled:
            span = scores.max() - scores.min()
            scores = (scores - scores.min()) / span if span > 0 else np.ones_like(scores)
        self.path = Path(path)
        frames = rows[:, 0].astype(np.int64)
        xyxy = rows[:, 2:6].copy()
        xyxy[:, 2:] += xyxy[:, :2]
        self._by_frame = {}
        for f in np.unique(frames):
            sel = frames == f
            self._by_frame[int(f)] = Detections(xyxy[sel], scores[sel], np.zeros(int(sel.sum())))
        self.frames = sorted(self._by_frame)  # frame numbers that have detections
        self.last_frame = int(frames.max())
        self.image_size = sequence_image_size(self.path.parent.parent / "seqinfo.ini")  # (width, height) or None

    def for_frame(self, frame: int) -> Detections:
        return self._by_frame.get(int(frame), Detections.empty())


def write_mot(path: str | Path, rows: Iterable[tuple[int, int, np.ndarray, float]]) -> Path:
    """Write ``(frame, id, xyxy box, score)`` rows as a MOTChallenge results file, atomically."""
    lines = []
    for frame, track_id, box, score in sorted(rows, key=lambda r: (r[0], r[1])):
        x1, y1, x2, y2 = (float(v) for v in box)
        lines.append(f"{frame},{track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{score:.4f},-1,-1,-1")
    return atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))


def evaluate_mot(gt_path: str | Path, pred_path: str | Path, num_frames: Optional[int] = None) -> dict[str, float]:
    """HOTA, DetA, AssA, MOTA, MOTP, IDF1, IDSW and counts of ``pred`` against ``gt`` (trackeval)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints notes about optional datasets
            import trackeval
    except ImportError:
        raise ImportError("tracking metrics need trackeval: pip install --no-deps trackeval") from None
    gt = read_mot(gt_path, "ground truth")
    _check_ids(gt, gt_path, "ground truth")
    pred_file = Path(pred_path)
    if not pred_file.is_file():
        raise FileNotFoundError(f"tracking results not found: {pred_file}")
    empty = not pred_file.read_bytes().strip()
    pred = np.zeros((0, 10)) if empty else read_mot(pred_file, "tracking results")
    _check_ids(pred, pred_file, "tracking results")
    last = int(max(gt[:, 0].max(), pred[:, 0].max() if len(pred) else 0))
    if num_frames is not None and num_frames < last:
        raise ValueError(f"--frames {num_frames} is shorter than the files: they reach frame {last}")
    frames = int(num_frames or last)
    # MOT16/17 ground truth carries classes 1-12 in column 8 (what preprocessing filters on);
    # MOT15's has world coordinates or -1 there, and is scored without preprocessing.
    benchmark = "MOT17" if np.isin(gt[:, 7], np.arange(1, 13)).all() else "MOT15"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq = "seq"
        (root / "gt" / seq / "gt").mkdir(parents=True)
        # trackeval reads the files again itself: give it the rows as checked, every line complete.
        (root / "gt" / seq / "gt" / "gt.txt").write_text(_rows_text(gt))
        (root / "gt" / seq / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={frames}\n")
        (root / "trackers" / "reidkit" / "data").mkdir(parents=True)
        (root / "trackers" / "reidkit" / "data" / f"{seq}.txt").write_text(_rows_text(pred))
        dataset_cfg = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
                       "TRACKERS_TO_EVAL": ["reidkit"], "BENCHMARK": benchmark, "SKIP_SPLIT_FOL": True,
                       "SEQ_INFO": {seq: frames}, "PRINT_CONFIG": False, "OUTPUT_FOLDER": str(root / "out")}
        eval_cfg = {"PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                    "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                    "DISPLAY_LESS_PROGRESS": True, "USE_PARALLEL": False}
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                evaluator = trackeval.Evaluator(eval_cfg)
                dataset = trackeval.datasets.MotChallenge2DBox(dataset_cfg)
                metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
                results, messages = evaluator.evaluate([dataset], metrics)
        except Exception as e:  # trackeval's own exception types, for inputs our checks let through
            raise ValueError(f"trackeval cannot score {pred_file} against {gt_path}: {' '.join(str(e).split())}") from None
    res = results["MotChallenge2DBox"]["reidkit"]
    if seq not in res:
        raise ValueError(f"trackeval cannot score {pred_file} against {gt_path}: {' '.join(str(messages).split())}")
    r = res[seq]["pedestrian"]
    return {"HOTA": 100 * float(np.mean(r["HOTA"]["HOTA"])), "DetA": 100 * float(np.mean(r["HOTA"]["DetA"])),
            "AssA": 100 * float(np.mean(r["HOTA"]["AssA"])),
            **{k: 100 * float(np.mean(r["HOTA"][k])) for k in ("DetRe", "DetPr", "AssRe", "AssPr", "LocA")},
            "MOTA": 100 * float(r["CLEAR"]["MOTA"]),
            "MOTP": 100 * float(r["CLEAR"]["MOTP"]), "IDF1": 100 * float(r["Identity"]["IDF1"]),
            "IDSW": int(r["CLEAR"]["IDSW"]), "GT_IDs": int(r["Count"]["GT_IDs"]) if "Count" in r else None,
            "frames": frames, "rules": benchmark}




def truth_identities(tracklets, gt: np.ndarray, min_iou: float = 0.5) -> dict[int, Optional[int]]:
    """The ground-truth person each track id follows: the id its boxes overlap (IoU >= ``min_iou``)
    in most of its frames, if that is at least half of them; None otherwise. ``gt``: rows of
    :func:`read_mot`."""
    from .matching import iou_matrix

    votes: dict[int, dict[int, int]] = {}
    seen: dict[int, int] = {}
    by_frame = {int(f): gt[gt[:, 0] == f] for f in np.unique(gt[:, 0])}
    for t in tracklets:
        for frame, box in zip(t.frames, t.boxes):
            seen[t.track_id] = seen.get(t.track_id, 0) + 1
            rows = by_frame.get(int(frame))
            if rows is None or not len(rows):
                continue
            truth = rows[:, 2:6].copy()
            truth[:, 2:] += truth[:, :2]
            overlap = iou_matrix(np.asarray(box, np.float64)[None], truth)[0]
            if overlap.max() >= min_iou:
                person = int(rows[int(overlap.argmax()), 1])
                votes.setdefault(t.track_id, {})[person] = votes.setdefault(t.track_id, {}).get(person, 0) + 1
    out: dict[int, Optional[int]] = {}
    for track_id, n in seen.items():
        person, count = max(votes.get(track_id, {}).items(), key=lambda kv: kv[1], default=(None, 0))
        out[track_id] = person if count * 2 >= n else None
    return out


def _check_ids(rows: np.ndarray, path: str | Path, what: str) -> None:
    """Ids must be whole numbers >= 1 (det.txt's -1 means "no id": detections, not tracks) and
    unique within a frame."""
    if not len(rows):
        return
    ids = rows[:, 1]
    bad = np.flatnonzero((ids < 1) | (ids != np.round(ids)))
    if len(bad):
        hint = " (id -1: this looks like detections, det.txt, not tracking results)" if ids[bad[0]] == -1 else ""
        raise ValueError(f"{path}: {what} need whole ids >= 1, frame {rows[bad[0], 0]:g} has id {ids[bad[0]]:g}{hint}")
    pairs = rows[:, 0] * (ids.max() + 1) + ids
    unique, counts = np.unique(pairs, return_counts=True)
    if (counts > 1).any():
        twice = unique[counts > 1][0]
        frame, track = divmod(int(twice), int(ids.max()) + 1)
        raise ValueError(f"{path}: id {track} appears twice in frame {frame}; each id is one box a frame")


def _rows_text(rows: np.ndarray) -> str:
    """MOTChallenge lines of ``rows`` (frame and id as integers, the rest as numbers)."""
    lines = [f"{int(r[0])},{int(r[1])}," + ",".join(f"{v:.7g}" for v in r[2:]) for r in rows]
    return "\n".join(lines) + ("\n" if lines else "")
