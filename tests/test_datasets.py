"""Dataset parsers on real Market-1501 names and on layouts written by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from reidkit.data.datasets import DatasetError, build_dataset
from reidkit.samples import MARKET1501_MINI


def touch_all(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_market_mini_real_names():
    ds = build_dataset("Market1501", MARKET1501_MINI)
    stats = {s: (i, n, c) for s, i, n, c in ds.stats()}
    assert stats == {"train": (16, 32, 6), "query": (16, 32, 6), "gallery": (16, 32, 6)}
    assert sorted({r.pid for r in ds.train}) == list(range(16))
    assert {r.camid for r in ds.query} == set(range(6))
    q = next(r for r in ds.query if Path(r.path).name == "0004_c2s3_059152_00.jpg")
    assert (q.pid, q.camid) == (4, 1)
    assert "train" in ds.summary() and "16" in ds.summary()


def test_market_junk_dropped_distractors_kept(tmp_path):
    root = tmp_path / "Market-1501-v15.09.15"
    touch_all(root / "bounding_box_train", ["0002_c1s1_000451_03.jpg", "0007_c2s3_070952_01.jpg",
                                            "0007_c3s3_070952_01.jpg"])
    touch_all(root / "query", ["0001_c1s1_001051_00.jpg"])
    touch_all(root / "bounding_box_test", ["0001_c2s1_000301_01.jpg", "0000_c1s1_000000_01.jpg",
                                           "-1_c1s1_000401_03.jpg"])
    ds = build_dataset("market1501", tmp_path)  # finds the versioned sub-folder, name case-insensitive
    assert [(r.pid, r.camid) for r in ds.gallery] == [(0, 0), (1, 1)]
    assert sorted((r.pid, r.camid) for r in ds.train) == [(0, 0), (1, 1), (1, 2)]


def test_duke_and_veri_names(tmp_path):
    touch_all(tmp_path / "duke" / "bounding_box_train", ["0001_c2_f0046182.jpg", "0005_c8_f0000001.jpg"])
    touch_all(tmp_path / "duke" / "query", ["0005_c2_f0046985.jpg"])
    touch_all(tmp_path / "duke" / "bounding_box_test", ["0005_c5_f0051781.jpg"])
    ds = build_dataset("DukeMTMC", tmp_path / "duke")
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 1), (1, 7)]
    touch_all(tmp_path / "VeRi" / "image_train", ["0001_c001_00016450_0.jpg", "0002_c012_00084005_1.jpg"])
    touch_all(tmp_path / "VeRi" / "image_query", ["0002_c002_00030600_0.jpg"])
    touch_all(tmp_path / "VeRi" / "image_test", ["0002_c003_00030620_0.jpg"])
    ds = build_dataset("VeRi", tmp_path)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (1, 11)]
    assert [(r.pid, r.camid) for r in ds.gallery] == [(2, 2)]


def test_cuhk03_np_folders(tmp_path):
    base = tmp_path / "cuhk03-np" / "detected"
    touch_all(base / "bounding_box_train", ["0001_c1_1.png", "0001_c2_6.png", "0003_c1_2.png"])
    touch_all(base / "query", ["0700_c1_1.png"])
    touch_all(base / "bounding_box_test", ["0700_c2_7.png"])
    ds = build_dataset("CUHK03", tmp_path)
    assert [r.pid for r in ds.train] == [0, 0, 1] and ds.query[0].pid == 700


def test_msmt17_lists(tmp_path):
    base = tmp_path / "MSMT17_V1"
    (base / "train").mkdir(parents=True)
    (base / "test").mkdir()
    (base / "list_train.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg 0\n"
                                         "0000/0000_001_05_0303morning_0016_0.jpg 0\n")
    (base / "list_val.txt").write_text("0001/0001_000_14_0303noon_0100_0.jpg 1\n")
    (base / "list_query.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg 0\n")
    (base / "list_gallery.txt").write_text("0000/0000_002_03_0303morning_0030_1.jpg 0\n")
    ds = build_dataset("MSMT17", tmp_path)
    assert [(r.pid, r.camid) for r in ds.train] == [(0, 0), (0, 4), (1, 13)]
    assert ds.gallery[0].path.endswith("test/0000/0000_002_03_0303morning_0030_1.jpg")
    (base / "list_query.txt").write_text("garbage\n")
    with pytest.raises(DatasetError, match=r"list_query.txt:1"):
        build_dataset("MSMT17", tmp_path)


def test_image_folder_layout(tmp_path):
    touch_all(tmp_path / "train" / "alice", ["a.jpg", "b.jpg"])
    touch_all(tmp_path / "train" / "bob", ["pic12.jpg"])
    touch_all(tmp_path / "query" / "carol", ["q_c1.jpg"])
    touch_all(tmp_path / "gallery" / "carol", ["g_c2.jpg", "g2.jpg"])
    ds = build_dataset("ImageFolder", tmp_path)
    assert sorted(r.pid for r in ds.train) == [0, 0, 1]
    assert all(r.camid < 0 for r in ds.train)  # "pic12" names no camera
    assert ds.query[0].pid == ds.gallery[0].pid
    cams = {Path(r.path).name: r.camid for r in ds.query + ds.gallery}
    assert cams["q_c1.jpg"] == 1 and cams["g_c2.jpg"] == 2
    assert cams["g2.jpg"] < 0  # no camera in the name: its own camera, never removed


def test_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found.*query, bounding_box_test"):
        build_dataset("Market1501", tmp_path)
    touch_all(tmp_path / "bounding_box_train", ["0001_c1s1_1.jpg"])
    touch_all(tmp_path / "query", ["not_a_market_name.jpg"])
    touch_all(tmp_path / "bounding_box_test", ["0001_c2s1_1.jpg"])
    with pytest.raises(DatasetError, match="not_a_market_name.jpg"):
        build_dataset("Market1501", tmp_path)
    (tmp_path / "query" / "not_a_market_name.jpg").unlink()
    with pytest.raises(DatasetError, match="no images"):
        build_dataset("Market1501", tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset 'Nope'.*Market1501"):
        build_dataset("Nope", tmp_path)


@pytest.mark.parametrize("train", ["missing", "empty"])
def test_evaluation_needs_no_training_split_and_training_says_so(tmp_path, train):
    """query/ and bounding_box_test/ are all that evaluation reads; training names the folder it lacks."""
    from reidkit.config import load_config
    from reidkit.engine.launch import train_records

    touch_all(tmp_path / "query", ["0001_c1s1_1.jpg"])
    touch_all(tmp_path / "bounding_box_test", ["0001_c2s1_1.jpg", "0002_c2s1_1.jpg"])
    if train == "empty":
        (tmp_path / "bounding_box_train").mkdir()
    ds = build_dataset("Market1501", tmp_path)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (0, 1, 2)
    assert any("evaluation only" in n and "bounding_box_train" in n for n in ds.notes)
    cfg = load_config(None, ["DATASETS.ROOT", str(tmp_path)])
    with pytest.raises(DatasetError, match=r"training needs labelled images.*bounding_box_train"):
        train_records(cfg)


def _tool(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_join_datasets_renumbers_identities_and_cameras_apart(tmp_path):
    tool = _tool("join_datasets")
    a, b = tmp_path / "a", tmp_path / "b"
    touch_all(a / "bounding_box_train", ["0001_c1s1_000001_00.jpg", "0001_c2s1_000002_00.jpg", "0002_c1s1_000003_00.jpg"])
    touch_all(a / "query", ["0005_c1s1_000004_00.jpg"])
    touch_all(a / "bounding_box_test", ["0005_c2s1_000005_00.jpg"])
    # b reuses identity 1 and cameras 1-2: after the join they must be another person and other cameras
    touch_all(b / "bounding_box_train", ["0001_c1s1_000001_00.jpg", "0001_c3s1_000002_00.jpg", "-1_c1s1_000009_00.jpg"])
    touch_all(b / "query", ["0009_c1s1_000004_00.jpg"])
    out = tmp_path / "joined"
    counts = tool.join([a, b], out)
    assert [(n, c) for _, n, c in counts] == [(3, 2), (2, 2)]
    ds = build_dataset("Market1501", out)
    by_name = {Path(r.path).name: (r.pid, r.camid) for r in ds.train}
    assert by_name == {"0001_c1s1_000001_00.jpg": (0, 0), "0001_c2s1_000002_00.jpg": (0, 1),
                       "0002_c1s1_000003_00.jpg": (1, 0),
                       "10001_c3s1_000001_00.jpg": (2, 2), "10001_c5s1_000002_00.jpg": (2, 4)}
    assert [Path(r.path).name for r in ds.query] == ["0005_c1s1_000004_00.jpg"]  # the first dataset's splits
    assert not (tmp_path / "joined.tmp").exists()
    with pytest.raises(SystemExit, match="exists"):
        tool.join([a, b], out)
    with pytest.raises(SystemExit, match="bounding_box_train"):
        tool.join([a, tmp_path / "missing"], tmp_path / "other")
    assert not (tmp_path / "other").exists() and not (tmp_path / "other.tmp").exists()


def test_narrow_classifier_keeps_the_rows_of_the_shared_identities(tmp_path):
    import torch

    a, b = tmp_path / "a", tmp_path / "b"
    touch_all(a / "bounding_box_train", ["0001_c1s1_000001_00.jpg", "0002_c2s1_000002_00.jpg", "0010_c1s1_000003_00.jpg"])
    touch_all(a / "query", ["0005_c1s1_000004_00.jpg"])
    touch_all(a / "bounding_box_test", ["0005_c2s1_000005_00.jpg"])
    touch_all(b / "bounding_box_train", [f"{pid:04d}_c1s1_{pid:06d}_00.jpg" for pid in range(1, 13)])
    touch_all(b / "query", ["0020_c1s1_000004_00.jpg"])
    touch_all(b / "bounding_box_test", ["0020_c2s1_000005_00.jpg"])
    joined = tmp_path / "joined"
    _tool("join_datasets").join([a, b], joined)
    # joined: identities 1, 2, 10 of a and 10001-10012 of b are relabelled 0..14 in sorted order, and
    # `reid train` orders those labels as strings: 0 1 10 11 12 13 14 2 3 ..., so a's identity 10
    # (label 2) is class 7. In a alone, identities 1, 2, 10 are classes 0, 1, 2.
    weight = torch.arange(15, dtype=torch.float32)[:, None].repeat(1, 4)
    torch.save({"model": {"heads.weight": weight, "heads.bottleneck.0.weight": torch.ones(4)},
                "meta": {"num_classes": 15, "classifier_key": "heads.weight"}}, tmp_path / "joined.pth")
    tool = _tool("narrow_classifier")
    assert tool.narrow(tmp_path / "joined.pth", joined, a, tmp_path / "a.pth") == (15, 3)
    out = torch.load(tmp_path / "a.pth", weights_only=False)
    assert out["model"]["heads.weight"][:, 0].tolist() == [0.0, 1.0, 7.0]
    assert torch.equal(out["model"]["heads.bottleneck.0.weight"], torch.ones(4))
    assert out["meta"]["num_classes"] == 3
    with pytest.raises(SystemExit, match="not in"):  # b's identities 3-12 were never trained on in a
        tool.narrow(tmp_path / "a.pth", a, b, tmp_path / "bad.pth")
    with pytest.raises(SystemExit, match="15 rows"):  # wrong root for this checkpoint
        tool.narrow(tmp_path / "joined.pth", a, a, tmp_path / "bad.pth")
    assert not (tmp_path / "bad.pth").exists()
