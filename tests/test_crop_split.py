"""`reid data crops`: a ReID test split cut from the shipped PETS09 clip and its ground truth,
checked against the ground truth read independently (plain csv) and the decoded frames."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
from typer.testing import CliRunner

from reidkit.cli.main import app
from reidkit.data.datasets import build_dataset
from reidkit.samples import PETS09_CLIP, PETS09_CLIP_GT

runner = CliRunner()


def expected_names(query_from: int, every: int, min_height: int) -> tuple[set[str], set[str]]:
    rows = [[float(v) for v in r] for r in csv.reader(PETS09_CLIP_GT.open())]
    rows = [r for r in rows if r[6] != 0 and (int(r[0]) - 1) % every == 0]
    gallery_ids = {int(r[1]) for r in rows if r[0] < query_from}
    gallery, query = set(), set()
    for r in rows:
        frame, pid = int(r[0]), int(r[1])
        top, bottom = max(0, round(r[3])), min(576, round(r[3] + r[5]))
        if bottom - top < max(min_height, 2):
            continue
        if frame < query_from:
            gallery.add(f"{pid:04d}_c1s1_{frame:06d}_00.jpg")
        elif pid in gallery_ids:
            query.add(f"{pid:04d}_c2s1_{frame:06d}_00.jpg")
    return gallery, query


def test_crop_split_holds_the_ground_truth_boxes_of_each_half(tmp_path):
    out = tmp_path / "split"
    result = runner.invoke(app, ["data", "crops", str(PETS09_CLIP), "--gt", str(PETS09_CLIP_GT), "-o", str(out),
                                 "--query-from", "101", "--every", "10", "--min-height", "60", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    gallery, query = expected_names(101, 10, 60)
    assert {p.name for p in (out / "bounding_box_test").iterdir()} == gallery
    assert {p.name for p in (out / "query").iterdir()} == query
    assert counts["gallery_images"] == len(gallery) and counts["query_images"] == len(query)
    assert counts["frames_read"] == 20 and counts["boxes_too_small"] > 0

    ds = build_dataset("Market1501", out)  # the split reads as a Market-1501 test set: query c2, gallery c1
    assert {r.camid for r in ds.query} == {1} and {r.camid for r in ds.gallery} == {0}

    # A crop is the ground-truth box of its frame (JPEG-compressed once more).
    name = sorted(query)[0]
    frame_no, pid = int(name.split("_")[2]), int(name.split("_")[0])
    box = next(r for r in csv.reader(PETS09_CLIP_GT.open()) if int(r[0]) == frame_no and int(r[1]) == pid)
    cap = cv2.VideoCapture(str(PETS09_CLIP))
    for _ in range(frame_no):
        ok, bgr = cap.read()
    x, y, w, h = (float(v) for v in box[2:6])
    region = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)[max(0, round(y)):round(y + h), max(0, round(x)):round(x + w)]
    crop = cv2.cvtColor(cv2.imread(str(out / "query" / name)), cv2.COLOR_BGR2RGB)
    assert crop.shape == region.shape
    assert np.abs(crop.astype(int) - region.astype(int)).mean() < 4


def test_crop_split_refuses_bad_input_and_writes_nothing(tmp_path):
    base = ["data", "crops", str(PETS09_CLIP), "--gt", str(PETS09_CLIP_GT)]
    full = tmp_path / "full"
    (full / "keep.txt").parent.mkdir()
    (full / "keep.txt").write_text("mine")
    result = runner.invoke(app, [*base, "-o", str(full), "--query-from", "101"])
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in full.iterdir()] == ["keep.txt"]

    result = runner.invoke(app, [*base, "-o", str(tmp_path / "a"), "--query-from", "101", "--start", "150"])
    assert result.exit_code == 2 and "--query-from 101" in result.output

    # Ground truth of another video: every box lies outside these frames, so no crop can be cut.
    elsewhere = tmp_path / "gt.txt"
    elsewhere.write_text("".join(f"{f},1,2000,2000,40,90,1,-1,-1,-1\n" for f in range(1, 201)))
    result = runner.invoke(app, ["data", "crops", str(PETS09_CLIP), "--gt", str(elsewhere), "-o",
                                 str(tmp_path / "b"), "--query-from", "101", "-q"])
    assert result.exit_code == 2 and "does the ground truth belong to this video" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "gt.txt"]
