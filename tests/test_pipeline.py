"""`reid track` end to end on real frames, MOT files and evaluation, and damaged inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from typer.testing import CliRunner

from reidkit.cli.main import app
from reidkit.tracking.mot import MOTDetections, evaluate_mot, read_mot, write_mot

runner = CliRunner()
PETS = FIXTURES / "pets09"


def frames_dir(tmp_path: Path, n: int = 8, broken: bool = False, pan: int = 4) -> Path:
    """A short real-looking sequence: PETS frame 1 panned ``pan`` px a frame (the people move together)."""
    from PIL import Image

    folder = tmp_path / "img1"
    folder.mkdir()
    first = np.asarray(Image.open(PETS / "000001.jpg").convert("RGB"))
    for k in range(n):
        Image.fromarray(np.roll(first, pan * k, axis=1)).save(folder / f"{k + 1:06d}.jpg", quality=92)
    if broken:
        (folder / f"{n + 1:06d}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return folder


def test_track_frames_with_detector_reid_and_gallery(tmp_path):
    folder = frames_dir(tmp_path, broken=True)
    out, gal = tmp_path / "out", tmp_path / "gal"
    result = runner.invoke(app, ["track", str(folder), "-o", str(out), "--camera", "cam3", "--gallery", str(gal),
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] == 8 and summary["camera"] == "cam3"  # the broken frame was skipped...
    assert any("000009.jpg" in p for p in summary["problems"])  # ...and reported
    assert set(summary["seconds"]) == {"decode", "detect", "embed", "track", "output"}
    rows = read_mot(out / "tracks.txt", "tracks")
    ids = rows[:, 1].astype(int)
    full = [i for i in set(ids) if (ids == i).sum() == 8]
    assert len(full) >= 2 and len(set(ids)) <= len(full) + 1  # the two clear people keep their ids
    meta = json.loads((out / "tracklets.json").read_text())
    with np.load(out / "tracklets.npz") as npz:
        assert npz["offsets"][-1] == len(rows) and npz["features"].shape == (len(rows), 1280)
        assert len(npz["mean_features"]) == len(meta["tracklets"])
    crops = [t["crop"] for t in meta["tracklets"] if t["crop"]]
    assert crops and all(Path(c).is_file() for c in crops)
    from reidkit.mtmc.tracklets import read_track_output, tracklet_feature

    records = read_track_output(out)  # what cross-camera association reads of the run
    assert {r.track_id for r in records} == {t["track_id"] for t in meta["tracklets"]}
    with np.load(out / "tracklets.npz") as npz:
        i = next(k for k, t in enumerate(meta["tracklets"]) if t["track_id"] == records[0].track_id)
        a, b = npz["offsets"][i], npz["offsets"][i + 1]
        np.testing.assert_allclose(records[0].feature, tracklet_feature(npz["features"][a:b], npz["scores"][a:b]))
    assert all(r.camera == "cam3" and r.start <= r.end and abs(np.linalg.norm(r.feature) - 1) < 1e-5 for r in records)
    import cv2

    video = cv2.VideoCapture(str(out / "tracks.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    info = json.loads(runner.invoke(app, ["gallery", "info", str(gal), "--json"]).stdout)
    assert info["items"] == len(meta["tracklets"]) and info["cameras"] == {"cam3": len(meta["tracklets"])}


def test_camera_motion_compensation_keeps_ids_through_a_fast_pan(tmp_path):
    folder = frames_dir(tmp_path, pan=30)  # a person 40 px wide overlaps its next box by IoU < 0.2

    def ids(*extra: str) -> np.ndarray:
        out = tmp_path / ("out" + "".join(extra))
        result = runner.invoke(app, ["track", str(folder), "-o", str(out), "--embedder", "none", "--no-video",
                                     "-q", *extra])
        assert result.exit_code == 0, result.output
        return read_mot(out / "tracks.txt", "tracks")[:, 1].astype(int)

    compensated, plain = ids("--cmc"), ids()
    assert max((compensated == i).sum() for i in set(compensated)) == 8  # someone tracked in every frame
    assert max((plain == i).sum() for i in set(plain)) < 8


def test_truncated_video_keeps_partial_results(tmp_path):
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7, (768, 576))
    frame = cv2.imread(str(PETS / "000001.jpg"))
    for _ in range(20):
        writer.write(frame)
    writer.release()
    raw = video.read_bytes()
    video.write_bytes(raw[: len(raw) // 2])
    result = runner.invoke(app, ["track", str(video), "-o", str(tmp_path / "out"), "--reid", "none", "--no-video",
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 0 < summary["frames"] < 20 and (tmp_path / "out" / "tracks.txt").is_file()
    assert "truncated or damaged" in result.output
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 1000)
    result = runner.invoke(app, ["track", str(tmp_path / "junk.mp4"), "-o", str(tmp_path / "o2"), "--reid", "none"])
    assert result.exit_code == 2 and "junk.mp4" in result.output


def test_public_detections_motion_only_and_trackeval(tmp_path):
    # A scripted scene with known truth: two people walking, detections jittered, one missed frame.
    rng = np.random.default_rng(0)
    gt, det = [], []
    for f in range(1, 41):
        for pid, x in ((1, 50 + 5 * f), (2, 600 - 4 * f)):
            gt.append(f"{f},{pid},{x},{200 + pid * 30},40,100,1,-1,-1,-1")
            if not (pid == 1 and f == 20):
                j = rng.normal(0, 1.5, 4)
                det.append(f"{f},-1,{x + j[0]:.1f},{200 + pid * 30 + j[1]:.1f},{40 + j[2]:.1f},{100 + j[3]:.1f},"
                           f"{rng.uniform(20, 90):.2f},-1,-1,-1")
    (tmp_path / "gt.txt").write_text("\n".join(gt) + "\n")
    (tmp_path / "det.txt").write_text("\n".join(det) + "\n")
    result = runner.invoke(app, ["track", "--detector", f"mot:{tmp_path / 'det.txt'}", "-o", str(tmp_path / "out"),
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert "rescaled" in result.output  # MOT15-style scores are not probabilities
    metrics = json.loads(runner.invoke(app, ["track-eval", "--gt", str(tmp_path / "gt.txt"), "--pred",
                                             str(tmp_path / "out" / "tracks.txt"), "--json"]).stdout)
    assert metrics["IDSW"] == 0 and metrics["IDF1"] > 90 and metrics["MOTA"] > 80 and metrics["HOTA"] > 70
    # trackeval itself, on a result that swaps the two ids half-way: it must see the switch.
    swapped = [r.split(",") for r in gt]
    for r in swapped:
        if int(r[0]) > 20:
            r[1] = "2" if r[1] == "1" else "1"
    (tmp_path / "swapped.txt").write_text("\n".join(",".join(r) for r in swapped) + "\n")
    bad = evaluate_mot(tmp_path / "gt.txt", tmp_path / "swapped.txt")
    assert bad["IDSW"] == 2 and bad["IDF1"] < 60 and bad["MOTA"] > 90


def test_mot_files_errors_and_round_trip(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt: no detections in it"):
        MOTDetections(tmp_path / "empty.txt")
    (tmp_path / "bad.txt").write_text("1,-1,10,10,5,5,0.9\n2,-1,ten,10,5,5,0.9\n")
    with pytest.raises(ValueError, match="bad.txt:2: not a MOTChallenge row"):
        read_mot(tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="detections file not found"):
        MOTDetections(tmp_path / "none.txt")
    result = runner.invoke(app, ["track", "--detector", f"mot:{tmp_path / 'empty.txt'}", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "empty file" in result.output
    path = write_mot(tmp_path / "out.txt", [(2, 7, np.array([10, 20, 50, 120.0]), 0.5), (1, 3, np.array([0, 0, 4, 8.0]), 1)])
    rows = read_mot(path)
    np.testing.assert_allclose(rows[:, :7], [[1, 3, 0, 0, 4, 8, 1], [2, 7, 10, 20, 40, 100, 0.5]])


def test_detection_runs_ahead_in_order_and_its_errors_reach_the_caller():
    import threading

    from reidkit.detection.base import Detections
    from reidkit.pipeline import NoFrames, run_tracking

    seen, threads = [], set()

    def detect(frame, number):
        seen.append(number)
        threads.add(threading.current_thread().name)
        box = np.array([[10.0 + 2 * number, 20, 50 + 2 * number, 120]], np.float32)
        return Detections(box, np.array([0.9], np.float32), np.zeros(1, np.int64))

    result = run_tracking(NoFrames(range(1, 41)), detect)
    assert seen == list(range(1, 41)) and threads == {"reidkit-detect"}
    assert result.frames == 40 and [t.track_id for t in result.tracklets] == [1]
    assert len(result.tracklets[0].frames) == 40 and result.wall_seconds > 0

    def broken(frame, number):
        if number == 7:
            raise ValueError("detector broke on frame 7")
        return detect(frame, number)

    with pytest.raises(ValueError, match="frame 7"):
        run_tracking(NoFrames(range(1, 41)), broken)
    assert not [t for t in threading.enumerate() if t.name == "reidkit-detect"]


def test_public_detections_give_the_tracker_the_frame_size_of_their_sequence(tmp_path, monkeypatch):
    from reidkit.pipeline import NoFrames, run_tracking
    from reidkit.tracking import Tracker
    from reidkit.tracking.mot import MOTDetections

    seq = tmp_path / "SEQ"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text("1,-1,10,20,30,60,0.9,-1,-1,-1\n")
    assert MOTDetections(seq / "det" / "det.txt").image_size is None  # no seqinfo.ini: unknown
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nimWidth=640\nimHeight=480\n")
    dets = MOTDetections(seq / "det" / "det.txt")
    assert dets.image_size == (640, 480)
    (seq / "seqinfo.ini").write_text("[Sequence]\nimWidth=wide\n")
    assert MOTDetections(seq / "det" / "det.txt").image_size is None
    views = []
    monkeypatch.setattr(Tracker, "set_view", lambda self, w, h: views.append((w, h)))
    run_tracking(NoFrames([1, 2], size=dets.image_size), lambda frame, number: dets.for_frame(number))
    assert views == [(640, 480)]
