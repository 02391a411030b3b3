"""`reid mtmc-eval`: how good the identities of a `reid mtmc` run are.

Two kinds of truth:

* a CSV ``camera,track_id,person_id`` saying who each tracklet is: pairwise precision, recall,
  F1 and purity (:func:`reidkit.mtmc.metrics.pairwise_scores`);
* MOTChallenge ground truth per camera whose person ids are global (one person, one id in every
  camera): each tracklet's person is the id its boxes overlap in most frames
  (:func:`reidkit.tracking.mot.truth_identities`), giving the pairwise scores, and IDF1 / HOTA over
  all cameras at once. For that the cameras are laid end to end on one timeline (camera k's frames
  shifted past camera k-1's), ground truth and predictions alike: an identity matched in two
  cameras then counts as one, so IDF1 rewards a right cross-camera link and punishes a wrong one.
  The same is scored with each camera's own track ids (every track a person of its own) for
  comparison. Each camera's ground truth is cut to the frames its `reid track` run saw.

The links the truth calls wrong (one predicted identity, two true people) and the ones it misses
are listed with their tracklets, so a reader can look at the crops: MOTChallenge's PETS09 ground
truth, for one, numbers a person who leaves and comes back anew, and calls their re-identification wrong.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Optional

import numpy as np

from ..mtmc.metrics import pairwise_scores
from ..mtmc.tables import read_labels

#: Wrong and missed links listed at most (the counts are always complete).
MAX_LINKS = 50


def outputs_of(pred: Path) -> tuple[Path, Path]:
    """(identities.csv, identities.json) of a `reid mtmc` output folder or of its identities.csv."""
    folder = pred if pred.is_dir() else pred.parent
    csv_path = folder / "identities.csv" if pred.is_dir() else pred
    return csv_path, folder / "identities.json"


def tracks_of(path: Path) -> list[SimpleNamespace]:
    """The tracks of a MOT file as (track_id, frames, xyxy boxes)."""
    from ..tracking.mot import read_mot

    rows = read_mot(path, "tracking results")
    out = []
    for t in np.unique(rows[:, 1]):
        r = rows[rows[:, 1] == t]
        out.append(SimpleNamespace(track_id=int(t), frames=r[:, 0], boxes=np.c_[r[:, 2:4], r[:, 2:4] + r[:, 4:6]]))
    return out


def truth_from_mot(inputs: Mapping[str, dict], gts: Mapping[str, Path]) -> dict[tuple[str, int], str]:
    """(camera, track id) -> ground-truth person, from each camera's `reid track` tracks."""
    from ..tracking.mot import read_mot, truth_identities

    out: dict[tuple[str, int], str] = {}
    for camera, gt_path in gts.items():
        gt = cut_to_run(read_mot(gt_path, "ground truth"), inputs[camera])
        for track, person in truth_identities(tracks_of(Path(inputs[camera]["tracks"])), gt).items():
            if person is not None:
                out[(camera, track)] = str(person)
    return out


def cut_to_run(rows: np.ndarray, entry: dict) -> np.ndarray:
    """MOT rows within the frames the camera's `reid track` run saw (all of them when not recorded)."""
    span = entry.get("frames")
    if not span:
        return rows
    return rows[(rows[:, 0] >= span[0]) & (rows[:, 0] <= span[1])]


def joined_idf1(inputs: Mapping[str, dict], gts: Mapping[str, Path], folder: Path,
                mapping: Optional[dict[tuple[str, int], int]]) -> dict[str, float]:
    """IDF1 / HOTA / ID switches with every camera on one timeline; ids global (``mapping``: the
    camera's track id -> global id) or, with ``mapping`` None, every camera's tracks their own people."""
    from ..tracking.mot import evaluate_mot, read_mot, write_mot

    gt_rows, pred_rows = [], []
    offset = 0
    next_id = 1 + max((g for g in (mapping or {}).values()), default=0)
    for camera, gt_path in gts.items():
        gt = cut_to_run(read_mot(gt_path, "ground truth"), inputs[camera])
        pred = read_mot(Path(inputs[camera]["tracks"]), "tracking results")
        lo = min(gt[:, 0].min() if len(gt) else np.inf, pred[:, 0].min() if len(pred) else np.inf)
        hi = max(gt[:, 0].max() if len(gt) else 0, pred[:, 0].max() if len(pred) else 0)
        if not np.isfinite(lo):
            continue
        shift = offset - lo + 1
        moved = gt.copy()
        moved[:, 0] += shift
        gt_rows.append(moved)
        own: dict[int, int] = {}
        for r in pred:
            track = int(r[1])
            if mapping is not None and (camera, track) in mapping:
                gid = mapping[(camera, track)]
            else:  # per-camera ids, or a track the association did not see: a person of its own
                if track not in own:
                    own[track], next_id = next_id, next_id + 1
                gid = own[track]
            pred_rows.append((int(r[0] + shift), gid, np.r_[r[2:4], r[2:4] + r[4:6]], float(r[6])))
        offset += int(hi - lo + 1)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        gt_file, pred_file = Path(tmp) / "gt.txt", Path(tmp) / "pred.txt"
        rows = np.concatenate(gt_rows) if gt_rows else np.zeros((0, 10))
        gt_file.write_text("".join(",".join(f"{v:g}" for v in r) + "\n" for r in rows))  # every column kept
        write_mot(pred_file, pred_rows)
        m = evaluate_mot(gt_file, pred_file, offset)
    return {"IDF1": m["IDF1"], "HOTA": m["HOTA"], "IDSW": m["IDSW"]}


def links(predicted: Mapping[tuple[str, int], str], truth: Mapping[tuple[str, int], str],
          appearances: Mapping[tuple[str, int], dict]) -> dict[str, Any]:
    """Pairs of tracklets the truth calls wrongly linked (one identity, two people) and wrongly
    apart (one person, two identities), each with both tracklets' camera, track, person, frames, crop."""
    keys = sorted(set(predicted) & set(truth))

    def describe(k):
        a = appearances.get(k, {})
        return {"camera": k[0], "track_id": k[1], "person": truth[k], "identity": predicted[k],
                "frames": [a.get("first_frame"), a.get("last_frame")], "crop": a.get("crop")}

    wrong, missed = [], []
    for a, b in itertools.combinations(keys, 2):
        together, same = predicted[a] == predicted[b], truth[a] == truth[b]
        if together and not same:
            wrong.append([describe(a), describe(b)])
        elif same and not together:
            missed.append([describe(a), describe(b)])
    return {"wrong_links": len(wrong), "missed_links": len(missed), "wrong": wrong[:MAX_LINKS],
            "missed": missed[:MAX_LINKS]}


def score_mtmc(pred: Path, truth_csv: Optional[Path] = None, gts: Optional[Mapping[str, Path]] = None,
               with_links: bool = False) -> dict[str, Any]:
    """Scores of a `reid mtmc` output (module docstring) against a truth CSV and/or MOT ground truth."""
    if truth_csv is None and not gts:
        raise ValueError("give the truth: --truth CSV (camera,track_id,person_id) and/or --gt CAMERA=GT.txt")
    csv_path, json_path = outputs_of(pred)
    predicted = read_labels(csv_path, "global_id")
    inputs: dict[str, dict] = {}
    appearances: dict[tuple[str, int], dict] = {}
    if json_path.is_file():
        data = json.loads(json_path.read_text(encoding="utf-8"))
        inputs = data.get("inputs", {})
        for ident in data.get("identities", []):
            for a in ident["appearances"]:
                appearances[(a["camera"], int(a["track_id"]))] = a
    truth: dict[tuple[str, int], str] = {}
    result: dict[str, Any] = {}
    if gts:
        for camera in gts:
            if camera not in inputs or not inputs[camera].get("tracks"):
                have = ", ".join(c for c, e in inputs.items() if e.get("tracks")) or "none"
                raise ValueError(f"--gt {camera}=...: {json_path} names no `reid track` input of camera {camera!r} "
                                 f"(cameras with tracks: {have})")
        truth.update(truth_from_mot(inputs, gts))
        mapping = {k: int(v) for k, v in predicted.items()}
        result["all_cameras_global_ids"] = joined_idf1(inputs, gts, csv_path.parent, mapping)
        result["all_cameras_per_camera_ids"] = joined_idf1(inputs, gts, csv_path.parent, None)
    if truth_csv is not None:
        truth.update(read_labels(truth_csv, "person_id"))
    common = sorted(set(predicted) & set(truth))
    if not common:
        raise ValueError(f"{csv_path} and the truth name no tracklet (camera, track_id) in common")
    result = {**pairwise_scores([predicted[k] for k in common], [truth[k] for k in common]), **result}
    result["missing_from_pred"] = len(set(truth) - set(predicted))
    if with_links:
        result["links"] = links(predicted, truth, appearances)
    return result
