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
    rows = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
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
        rows.append((values + [1.0, -1.0, -1.0, -1.0])[:10])
    if not rows:
        raise ValueError(f"{path}: no {what} in it (empty file)")
    arr = np.array(rows, np.float64)
    return arr[np.argsort(arr[:, 0], kind="stable")]


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
        self.last_frame = int(frames.max())

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
    pred_file = Path(pred_path)
    if not pred_file.is_file():
        raise FileNotFoundError(f"tracking results not found: {pred_file}")
    pred_text = pred_file.read_text()
    if pred_text.strip():
        read_mot(pred_file, "tracking results")  # the same format checks, with line numbers
    frames = int(num_frames or max(gt[:, 0].max(), _max_frame(pred_text)))
    # MOT16/17 ground truth carries classes 1-12 in column 8 (what preprocessing filters on);
    # MOT15's has world coordinates or -1 there, and is scored without preprocessing.
    benchmark = "MOT17" if np.isin(gt[:, 7], np.arange(1, 13)).all() else "MOT15"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seq = "seq"
        (root / "gt" / seq / "gt").mkdir(parents=True)
        (root / "gt" / seq / "gt" / "gt.txt").write_text(Path(gt_path).read_text())
        (root / "gt" / seq / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={frames}\n")
        (root / "trackers" / "reidkit" / "data").mkdir(parents=True)
        (root / "trackers" / "reidkit" / "data" / f"{seq}.txt").write_text(pred_text)
        dataset_cfg = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
                       "TRACKERS_TO_EVAL": ["reidkit"], "BENCHMARK": benchmark, "SKIP_SPLIT_FOL": True,
                       "SEQ_INFO": {seq: frames}, "PRINT_CONFIG": False, "OUTPUT_FOLDER": str(root / "out")}
        eval_cfg = {"PRINT_RESULTS": False, "PRINT_CONFIG": False, "TIME_PROGRESS": False,
                    "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                    "DISPLAY_LESS_PROGRESS": True, "USE_PARALLEL": False}
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = trackeval.Evaluator(eval_cfg)
            dataset = trackeval.datasets.MotChallenge2DBox(dataset_cfg)
            metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
            results, messages = evaluator.evaluate([dataset], metrics)
    res = results["MotChallenge2DBox"]["reidkit"]
    if seq not in res:
        raise RuntimeError(f"trackeval failed: {messages}")
    r = res[seq]["pedestrian"]
    return {"HOTA": 100 * float(np.mean(r["HOTA"]["HOTA"])), "DetA": 100 * float(np.mean(r["HOTA"]["DetA"])),
            "AssA": 100 * float(np.mean(r["HOTA"]["AssA"])), "MOTA": 100 * float(r["CLEAR"]["MOTA"]),
            "MOTP": 100 * float(r["CLEAR"]["MOTP"]), "IDF1": 100 * float(r["Identity"]["IDF1"]),
            "IDSW": int(r["CLEAR"]["IDSW"]), "GT_IDs": int(r["Count"]["GT_IDs"]) if "Count" in r else None,
            "frames": frames, "rules": benchmark}


def _max_frame(text: str) -> int:
    frames = [int(float(line.split(",")[0])) for line in text.splitlines() if line.strip()]
    return max(frames, default=0)
