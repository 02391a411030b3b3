"""What a user can type or feed that is wrong: every case ends in one line ``error: ...`` naming the
file, key or value, exit code 2, and nothing lost or half-written. One test (or a few) per class."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reidkit.cli.main import app
from reidkit.images import MAX_PIXELS, ImageReadError, read_image, read_image_bytes
from reidkit.retrieval import Gallery
from reidkit.retrieval.gallery import DB_NAME
from reidkit.samples import MARKET1501_MINI

runner = CliRunner()
CROPS = sorted((MARKET1501_MINI / "query").glob("*.jpg"))
REID = [sys.executable, "-m", "reidkit.cli.main"]


def refused(args: list[str], *needles: str, code: int = 2) -> str:
    """Run ``reid ARGS``: exit ``code``, exactly one ``error:`` line naming every needle, no traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.exit_code == code, result.output
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def bomb_png(path: Path, width: int = 30000, height: int = 30000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\0" * (3 * width + 1) * 4)  # a few rows; a decoder would still allocate all
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def crops_with(tmp_path: Path, *extra: tuple[str, bytes | None]) -> Path:
    """A folder with three real crops and ``extra`` (name, bytes; None: a bomb PNG)."""
    folder = tmp_path / "crops"
    folder.mkdir()
    for p in CROPS[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    for name, data in extra:
        if data is None:
            bomb_png(folder / name)
        else:
            (folder / name).write_bytes(data)
    return folder


# ---- images: one decoder, every pixel format, a pixel limit ---------------------------------

def image_kinds(tmp_path: Path) -> tuple[np.ndarray, dict[str, Path]]:
    import cv2

    rgb = np.asarray(Image.open(CROPS[0]).convert("RGB"))
    im = Image.fromarray(rgb)
    paths = {}
    for name, save in {
        "rgb.png": lambda p: im.save(p), "grey.png": lambda p: im.convert("L").save(p),
        "palette.png": lambda p: im.convert("P").save(p), "rgba.png": lambda p: im.convert("RGBA").save(p),
        "grey_alpha.png": lambda p: im.convert("LA").save(p), "cmyk.jpg": lambda p: im.convert("CMYK").save(p),
        "rgb.bmp": lambda p: im.save(p), "rgb.webp": lambda p: im.save(p, lossless=True),
        "grey16.png": lambda p: cv2.imwrite(str(p), np.asarray(im.convert("L")).astype(np.uint16) * 257),
        "rgb16.png": lambda p: cv2.imwrite(str(p), rgb[:, :, ::-1].astype(np.uint16) * 257),
    }.items():
        paths[name] = tmp_path / name
        save(paths[name])
    return rgb, paths


@pytest.mark.parametrize("decoder", ["pil", "cv2"])
def test_every_pixel_format_decodes_to_the_same_rgb_on_both_paths(tmp_path, decoder):
    rgb, paths = image_kinds(tmp_path)
    grey = np.asarray(Image.fromarray(rgb).convert("L"), np.float64)[:, :, None]
    for name, path in paths.items():
        got = read_image(path, decoder)
        assert got.dtype == np.uint8 and got.shape == rgb.shape, name
        assert np.array_equal(read_image_bytes(path.read_bytes(), decoder, name), got), name  # an upload
        want = grey if name.startswith("grey") else rgb.astype(np.float64)
        # palette: 256-colour quantisation; CMYK: the JPEG round trip; 16-bit: the high byte, exactly
        limit = {"palette.png": 20, "cmyk.jpg": 3}.get(name, 0.0)
        assert np.abs(got - want).mean() <= limit, (name, np.abs(got - want).mean())
    tiny = tmp_path / "one.png"
    Image.fromarray(rgb[:1, :1]).save(tiny)
    wide = tmp_path / "wide.png"
    Image.fromarray(np.tile(rgb[:1], (1, 60, 1))).save(wide)  # 1 x 3840
    assert read_image(tiny, decoder).shape == (1, 1, 3) and read_image(wide, decoder).shape == (1, 3840, 3)


def test_a_16_bit_png_gives_the_features_of_the_same_picture_in_8_bits(tmp_path):
    """PIL alone clips 16-bit PNGs to white (cosine 0.19 to the 8-bit picture with the default model)."""
    from reidkit.inference import Embedder

    _, paths = image_kinds(tmp_path)
    emb = Embedder.default()
    for preprocess in ("loader", "demo"):
        emb.preprocess = preprocess
        feats, ok, failed = emb.embed_files([paths["grey.png"], paths["grey16.png"], paths["rgb.png"],
                                             paths["rgb16.png"], tmp_path / "one.png", tmp_path / "wide.png"])
        assert ok == [0, 1, 2, 3] and len(failed) == 2  # the last two do not exist: reported, not fatal
        assert float(feats[0] @ feats[1]) > 0.9999 and float(feats[2] @ feats[3]) > 0.9999


@pytest.mark.parametrize("decoder", ["pil", "cv2"])
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, decoder):
    path = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageReadError, match=r"bomb\.png: [0-9,x]+ pixels, more than the limit of 64 million"):
        read_image(path, decoder)
    assert 30000 * 30000 > MAX_PIXELS > 7680 * 4320  # an 8K frame still decodes
    broken = tmp_path / "x.jpg"
    broken.write_bytes(b"\xff\xd8 no")
    with pytest.raises(ImageReadError, match=r"x\.jpg: not a readable image"):
        read_image(broken, decoder)
    # the same from bytes in memory (an upload), named by the name given
    with pytest.raises(ImageReadError, match=r"up\.png: [0-9,x]+ pixels, more than the limit of 64 million"):
        read_image_bytes(path.read_bytes(), decoder, "up.png")
    with pytest.raises(ImageReadError, match=r"^up\.jpg: not a readable image \(cannot identify image file\)$"):
        read_image_bytes(broken.read_bytes(), decoder, "up.jpg")
    with pytest.raises(ImageReadError, match="up.jpg: empty file"):
        read_image_bytes(b"", decoder, "up.jpg")


def test_bombs_and_broken_images_are_skipped_and_reported_by_every_command(tmp_path):
    folder = crops_with(tmp_path, ("0001_c1s1_000001_00.png", None), ("0002_c1s1_000001_00.jpg", b"\xff\xd8 no"))
    for preprocess in ("loader", "demo"):
        out = tmp_path / f"feats-{preprocess}"
        result = runner.invoke(app, ["extract", str(folder), "-o", str(out), "--preprocess", preprocess, "-q"])
        assert result.exit_code == 0, result.output
        assert "skipped 2 unreadable images" in result.stderr and "more than the limit" in result.stderr
        with np.load(out / "features.npz") as f:
            assert len(f["names"]) == 3
    gal = tmp_path / "gal"
    assert runner.invoke(app, ["gallery", "create", str(gal)]).exit_code == 0
    result = runner.invoke(app, ["gallery", "add", str(gal), str(folder), "-q"])
    assert result.exit_code == 0 and "added 3 images" in result.stdout and "more than the limit" in result.stderr
    refused(["gallery", "search", gal, folder / "0001_c1s1_000001_00.png"], "0001_c1s1_000001_00.png",
            "more than the limit")
    from reidkit.data.loader import ImageDataset

    dataset = ImageDataset([type("R", (), {"path": str(folder / "0001_c1s1_000001_00.png"), "pid": 0,
                                           "camid": 0})()], lambda img, gen: img)
    assert dataset[0] is None  # the training loader skips it (and counts it), inside a worker too


def test_eval_skips_unreadable_images_and_names_its_runtime(tmp_path):
    root = tmp_path / "ds"
    for split, src in (("query", "query"), ("bounding_box_test", "bounding_box_test")):
        (root / split).mkdir(parents=True)
        for p in sorted((MARKET1501_MINI / src).glob("*.jpg")):
            (root / split / p.name).write_bytes(p.read_bytes())
    bomb_png(root / "bounding_box_test" / "0001_c6s1_000001_00.png")
    result = runner.invoke(app, ["eval", "--root", str(root), "-q"])
    assert result.exit_code == 0, result.output
    assert "0001_c6s1_000001_00.png" in result.stderr and "more than the limit" in result.stderr
    assert "embedded" in result.stdout and "in torch" in result.stdout  # 96 images: too few for the export
    result = runner.invoke(app, ["visualize", "--root", str(root), "-o", str(tmp_path / "vis"), "--num-vis", "1",
                                 "-q"])
    assert result.exit_code == 0 and "0001_c6s1_000001_00.png" in result.stderr, result.output
    assert (tmp_path / "vis" / "report.html").is_file()


# ---- cameras are names ----------------------------------------------------------------------

def test_cameras_are_names_in_galleries_filters_and_reidkit_crop_names(tmp_path):
    from reidkit.retrieval import Filters
    from reidkit.retrieval.sources import metadata_from_name

    g = Gallery.create(tmp_path / "g", "m", 4)
    vecs = np.eye(4, dtype=np.float32)
    g.add(vecs, [{"camera": "cam1"}, {"camera": "door1"}, {"camera": "lobby"}, {"camera": 2}])
    assert g.info()["cameras"] == {"2": 1, "cam1": 1, "door1": 1, "lobby": 1}
    hits = g.search(vecs[1], 4, Filters(cameras=["door1"]))[0]
    assert [h.camera for h in hits] == ["door1"]
    assert "cam1" not in {h.camera for h in g.search(vecs[0], 4, Filters(exclude_camera="cam1"))[0]}
    assert [h.id for h in g.search(vecs[3], 4, Filters(cameras=[2]))[0]] == [4]  # a number is its text
    g.close()
    assert metadata_from_name("lobby_2_00007_00003.jpg") == {"camera": "lobby_2", "track_id": 7}
    assert metadata_from_name("0002_c1s1_000451_03.jpg") == {"person_id": 2, "camera": "1", "frame": 451}


def test_a_format_1_gallery_is_upgraded_with_its_ids_and_vectors(tmp_path):
    import sqlite3

    g = Gallery.create(tmp_path / "old", "m", 4)
    g.add(np.eye(4, dtype=np.float32)[:3], [{"camera": 1}, {"camera": 2}, {}])
    g.remove([3])  # the id counter must survive: the next item is 4, not 3
    g.close()
    db = sqlite3.connect(str(tmp_path / "old" / DB_NAME), isolation_level=None)  # rewrite it as format 1 had it
    db.executescript("""
        CREATE TABLE items1 (id INTEGER PRIMARY KEY AUTOINCREMENT, camera INTEGER, frame INTEGER, timestamp REAL,
            source TEXT, track_id INTEGER, person_id INTEGER, added_at REAL NOT NULL, vector BLOB NOT NULL);
        INSERT INTO items1 SELECT id, CAST(camera AS INTEGER), frame, timestamp, source, track_id, person_id,
            added_at, vector FROM items;
        DROP TABLE items; ALTER TABLE items1 RENAME TO items;
        UPDATE sqlite_sequence SET seq = 3 WHERE name = 'items';
        UPDATE settings SET value = '1' WHERE key = 'format';""")
    db.close()
    with Gallery.open(tmp_path / "old") as g:
        assert g.settings["format"] == "3" and len(g) == 2
        assert g.metadata([1, 2]) == {1: {**g.metadata([1])[1], "camera": "1"}, 2: {**g.metadata([2])[2], "camera": "2"}}
        assert g.add(np.eye(4, dtype=np.float32)[3:]).tolist() == [4]
        np.testing.assert_array_equal(g.vectors_of([1, 2, 4]), np.eye(4, dtype=np.float32)[[0, 1, 3]])


def test_exclude_same_camera_reads_reidkit_crop_names(tmp_path):
    folder = tmp_path / "crops"
    folder.mkdir()
    for i, cam in enumerate(("door_1", "door_1", "lobby")):
        (folder / f"{cam}_{i + 1:05d}_{i:05d}.jpg").write_bytes(CROPS[i].read_bytes())
    gal = tmp_path / "gal"
    assert runner.invoke(app, ["gallery", "create", str(gal)]).exit_code == 0
    assert runner.invoke(app, ["gallery", "add", str(gal), str(folder), "-q"]).exit_code == 0
    result = runner.invoke(app, ["gallery", "search", str(gal), str(folder / "door_1_00001_00000.jpg"),
                                 "--exclude-same-camera", "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert [h["camera"] for h in hits] == ["lobby"] and hits[0]["track_id"] == 3
    result = runner.invoke(app, ["gallery", "search", str(gal), str(CROPS[0]), "--camera", "door_1", "--json"])
    assert {h["camera"] for h in json.loads(result.stdout)["hits"]} == {"door_1"}


# ---- output locations are checked before the work -------------------------------------------

def test_unwritable_outputs_are_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    under = blocker / "sub"  # cannot be made: its parent is a file (root ignores permissions)
    cfg = ["-c", "configs/Synth/lite0_quick.yml"]
    cases = [
        (["extract", CROPS[0], "-o", under], "--output", str(under)),
        (["extract", CROPS[0], "-o", blocker], str(blocker), "is a file"),
        (["export", "onnx", "-o", under / "m.onnx"], "--output", str(under)),
        (["export", "onnx", "-o", tmp_path], str(tmp_path), "is a folder"),
        (["gallery", "create", under], str(under), "is a file"),
        (["gallery", "create", blocker], str(blocker), "is a file"),
        (["data", "synth", "--out", under], "--out", str(under)),
        (["track", CROPS[0], "-o", under, "--reid", "none"], "--output", str(under)),
        (["visualize", "--root", MARKET1501_MINI, "-o", under], "--output", str(under)),
        (["train", *cfg, "OUTPUT_DIR", str(under)], "OUTPUT_DIR", str(under)),
        (["demo", "-o", under], "--output", str(under)),
        (["track", CROPS[0], "-o", tmp_path / "t", "--gallery", under], "--gallery", str(under)),
    ]
    for args, *needles in cases:
        refused(args, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # nothing was made anywhere


def test_search_html_is_checked_before_the_search(tmp_path):
    gal = tmp_path / "gal"
    assert runner.invoke(app, ["gallery", "create", str(gal)]).exit_code == 0
    assert runner.invoke(app, ["gallery", "add", str(gal), str(CROPS[0]), "-q"]).exit_code == 0
    refused(["gallery", "search", gal, CROPS[1], "--html", tmp_path], "--html", "is a folder")
    refused(["gallery", "search", gal, CROPS[1], "--html", gal / DB_NAME / "x.html"], "--html")


# ---- numbers, devices and keys --------------------------------------------------------------

@pytest.mark.parametrize("key,value,expected", [
    ("SOLVER.IMS_PER_BATCH", "0", "an integer >= 1"), ("SOLVER.IMS_PER_BATCH", "-8", "an integer >= 1"),
    ("SOLVER.MAX_EPOCH", "0", "an integer >= 1"), ("SOLVER.MAX_EPOCH", "-1", "an integer >= 1"),
    ("TEST.IMS_PER_BATCH", "0", "an integer >= 1"), ("INPUT.SIZE_TEST", "[0,0]", "[height, width]"),
    ("INPUT.SIZE_TRAIN", "[256]", "[height, width]"), ("MODEL.DEVICE", "tpu", "cpu, cuda"),
    ("SOLVER.BASE_LR", "-0.1", "> 0"), ("INPUT.REA.PROB", "1.5", "[0, 1]"), ("SEED", "-1", "2**32"),
    ("TEST.METRIC", "manhattan", "cosine or euclidean"), ("DATALOADER.NUM_WORKERS", "-2", ">= 0"),
])
def test_config_values_out_of_range_are_refused_naming_the_key(key, value, expected):
    refused(["config", "show", "--opts", key, value], key, expected)


#: A value of the right type but out of range for every key the config checks (validate.RULES).
BAD_VALUES = {
    "MODEL.DEVICE": "tpu", "MODEL.BACKBONE.LAST_STRIDE": "3", "MODEL.HEADS.NUM_CLASSES": "-1",
    "MODEL.HEADS.EMBEDDING_DIM": "-5", "INPUT.SIZE_TRAIN": "[0, 0]", "INPUT.SIZE_TEST": "[256]",
    "INPUT.FLIP.PROB": "1.5", "INPUT.REA.PROB": "-0.1", "INPUT.CJ.PROB": "2", "INPUT.AUTOAUG.PROB": "-1",
    "INPUT.AUGMIX.PROB": "1.01", "INPUT.RPT.PROB": "3", "INPUT.PADDING.SIZE": "-10",
    "INPUT.DOWNSCALE.PROB": "1.2", "INPUT.DOWNSCALE.MIN_SCALE": "0",
    "INPUT.GRAYSCALE.PROB": "-0.5",
    "DATALOADER.NUM_INSTANCE": "0", "DATALOADER.NUM_WORKERS": "-1", "SOLVER.MAX_EPOCH": "0",
    "SOLVER.IMS_PER_BATCH": "-8", "SOLVER.BASE_LR": "0", "SOLVER.BIAS_LR_FACTOR": "-1",
    "SOLVER.HEADS_LR_FACTOR": "0", "SOLVER.MOMENTUM": "-0.9", "SOLVER.WEIGHT_DECAY": "-1e-4",
    "SOLVER.WEIGHT_DECAY_NORM": "-1", "SOLVER.WEIGHT_DECAY_BIAS": "-1", "SOLVER.GAMMA": "0",
    "SOLVER.STEPS": "[10, -5]", "SOLVER.ETA_MIN_LR": "-1e-7", "SOLVER.WARMUP_FACTOR": "0",
    "SOLVER.WARMUP_ITERS": "-1", "SOLVER.DELAY_EPOCHS": "-2", "SOLVER.FREEZE_ITERS": "-1",
    "SOLVER.CHECKPOINT_PERIOD": "0", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": "0", "TEST.EVAL_PERIOD": "-1",
    "TEST.IMS_PER_BATCH": "0", "TEST.METRIC": "manhattan", "TEST.AQE.QE_K": "0", "TEST.AQE.QE_TIME": "0",
    "TEST.AQE.ALPHA": "-3", "TEST.RERANK.K1": "0", "TEST.RERANK.K2": "-6", "TEST.RERANK.LAMBDA": "1.3",
    "SEED": "-1",
}


def test_every_checked_config_key_refuses_an_out_of_range_value():
    from reidkit.config import ConfigError, load_config
    from reidkit.config.validate import RULES

    assert set(BAD_VALUES) == set(RULES)
    for key, value in BAD_VALUES.items():
        with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')} .*: expected .*\(in the defaults \+ the overrides\)"):
            load_config(None, [key, value])
    load_config(None, [x for key in ("SOLVER.IMS_PER_BATCH", "SOLVER.MAX_EPOCH") for x in (key, "1")])  # the edge is fine


def test_train_refuses_bad_numbers_and_devices_before_working(tmp_path):
    cfg = ["-c", "configs/Synth/lite0_quick.yml", "OUTPUT_DIR", str(tmp_path / "out")]
    refused(["train", *cfg, "SOLVER.IMS_PER_BATCH", "0"], "SOLVER.IMS_PER_BATCH 0", "lite0_quick.yml")
    refused(["train", *cfg, "MODEL.DEVICE", "tpu"], "MODEL.DEVICE 'tpu'")
    refused(["extract", CROPS[0], "-o", tmp_path / "f", "--device", "foo"], "--device 'foo'")
    refused(["gallery", "add", tmp_path / "nope", CROPS[0], "--device", "gpu0"], "--device 'gpu0'")
    assert not (tmp_path / "out").exists() and not (tmp_path / "f").exists()


def test_config_show_takes_overrides_without_a_file_and_refuses_duplicate_keys(tmp_path):
    result = runner.invoke(app, ["config", "show", "--opts", "SOLVER.BASE_LR", "0.5", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["SOLVER"]["BASE_LR"] == 0.5
    dup = tmp_path / "dup.yml"
    dup.write_text("SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCH: 3\n  BASE_LR: 0.2\n")
    refused(["config", "show", dup], "dup.yml:4", "'BASE_LR' is given twice (lines 2 and 4)")
    bad = tmp_path / "latin1.yml"
    bad.write_bytes("OUTPUT_DIR: caf\xe9\n".encode("latin-1"))
    refused(["config", "show", bad], "latin1.yml", "not UTF-8")


# ---- training output ------------------------------------------------------------------------

TINY_TRAIN = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.NAME", "build_resnet_backbone", "MODEL.BACKBONE.DEPTH", "18x",
              "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.FEAT_DIM", "512", "INPUT.SIZE_TRAIN", "[64, 32]",
              "INPUT.SIZE_TEST", "[64, 32]", "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "2",
              "SOLVER.MAX_EPOCH", "1", "TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_ITERS", "2"]


@pytest.mark.slow
def test_train_does_not_overwrite_an_earlier_run_and_resume_checks_the_architecture(tmp_path):
    from reidkit.data.synthetic import generate

    generate(tmp_path / "data", num_ids=8, num_cameras=2, images_per_camera=2, num_distractors=0)
    out = tmp_path / "run"
    args = ["train", "-c", "configs/Synth/lite0_quick.yml", "--no-progress", *TINY_TRAIN,
            "DATASETS.ROOT", str(tmp_path / "data"), "OUTPUT_DIR", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".pth", ".csv")}
    assert "last.pth" in before and "model_final.pth" in before
    refused(args, str(out), "--resume", "--force")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".pth", ".csv")} == before
    refused([*args, "--resume", "MODEL.BACKBONE.DEPTH", "34x"], "last.pth", "another model", "config.yaml")
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0  # starts afresh


# ---- tracking -------------------------------------------------------------------------------

def frames(tmp_path: Path, n: int = 4, size: tuple[int, int] | None = None) -> Path:
    from conftest import FIXTURES

    folder = tmp_path / "img1"
    folder.mkdir()
    first = Image.open(FIXTURES / "pets09" / "000001.jpg").convert("RGB")
    if size is not None:
        first = first.resize(size)
    for k in range(n):
        first.save(folder / f"{k + 1:06d}.jpg", quality=92)
    return folder


def test_hog_on_frames_smaller_than_its_window_finds_nobody_instead_of_crashing(tmp_path):
    code = ("import numpy as np; from reidkit.detection.hog import HOGDetector; d = HOGDetector(); "
            "print([len(d.detect(np.full((h, w, 3), 127, np.uint8))) for h, w in [(120, 60), (60, 30), (10, 10), "
            "(127, 200), (300, 63)]])")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "[0, 0, 0, 0, 0]", run.stderr[-2000:]
    result = runner.invoke(app, ["track", str(frames(tmp_path, 3, (60, 100))), "-o", str(tmp_path / "o"),
                                 "--detector", "hog", "--reid", "none", "--no-video", "-q", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["frames"] == 3


def test_public_detections_with_a_far_frame_number_take_no_time(tmp_path):
    det = tmp_path / "det.txt"
    rows = [f"{f},-1,{100 + 2 * f},100,40,100,0.9,-1,-1,-1" for f in (1, 2, 3)]
    det.write_text("\n".join(rows + ["1000000000,-1,100,100,40,100,0.9,-1,-1,-1"]) + "\n")
    result = runner.invoke(app, ["track", "--detector", f"mot:{det}", "-o", str(tmp_path / "o"), "--json", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["frames"] <= 2 * (30 + 2) + 4  # frames near detections only, not a billion
    tracks = (tmp_path / "o" / "tracks.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in tracks][:3] == ["1", "2", "3"]


def test_track_refuses_a_start_past_the_end_and_scores_outside_0_1(tmp_path):
    folder = frames(tmp_path, 3)
    refused(["track", folder, "-o", tmp_path / "o", "--start", "10", "--reid", "none"], "--start 10", "frame 3")
    result = runner.invoke(app, ["track", str(folder), "-o", str(tmp_path / "o"), "--score", "1.5"])
    assert result.exit_code == 2 and "--score" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_track_names_a_bad_detector_file_or_size(tmp_path):
    from test_yolo import constant_model

    folder = frames(tmp_path, 2)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    strange = constant_model(tmp_path / "strange.onnx", np.zeros((1, 3, 4), np.float32))
    common = ["-o", tmp_path / "o", "--reid", "none"]
    refused(["track", folder, *common, "--detector", f"yolox:{tmp_path / 'none.onnx'}"], "none.onnx", "never downloads")
    refused(["track", folder, *common, "--detector", f"yolox:{junk}"], "junk.onnx", "cannot load it")
    refused(["track", folder, *common, "--detector", f"onnx:{strange}"], "strange.onnx", "unrecognised YOLO output")
    refused(["track", folder, *common, "--det-size", "500x384"], "--det-size 500x384", "multiples of 32")
    refused(["track", folder, *common, "--det-size", "big"], "--det-size 'big'", "WIDTHxHEIGHT")
    refused(["track", folder, *common, "--detector", "ssdlite", "--det-size", "512x384"], "--det-size",
            "YOLO detectors")
    assert not (tmp_path / "o").exists()


def test_track_into_a_gallery_uses_the_gallerys_model_or_refuses(tmp_path):
    import torch

    from reidkit.weights import default_weights

    folder = frames(tmp_path, 3)
    other = tmp_path / "other.pth"  # another model of the same dimension (1280)
    ckpt = torch.load(default_weights(), weights_only=False)
    ckpt["model"] = {k: (v * 1.01 if v.is_floating_point() else v) for k, v in ckpt["model"].items()}
    torch.save(ckpt, other)
    gal = tmp_path / "gal"
    assert runner.invoke(app, ["gallery", "create", str(gal), "--weights", str(other)]).exit_code == 0
    refused(["track", folder, "-o", tmp_path / "o1", "--gallery", gal, "--reid", "default"],
            "do not compare", "other.pth", "drop --reid")
    with Gallery.open(gal) as g:
        assert len(g) == 0
    result = runner.invoke(app, ["track", str(folder), "-o", str(tmp_path / "o2"), "--gallery", str(gal),
                                 "--no-video", "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reid"] == "other.pth"  # the gallery's own model, not the default
    with Gallery.open(gal) as g:
        added = len(g)
    assert added > 0
    torch.save({**ckpt, "model": {k: v * 1.02 if v.is_floating_point() else v for k, v in ckpt["model"].items()}},
               other)  # the gallery's model file changed since
    refused(["track", folder, "-o", tmp_path / "o3", "--gallery", gal], "changed since")
    with Gallery.open(gal) as g:
        assert len(g) == added


@pytest.mark.parametrize("case", ["six_columns", "det_as_pred", "duplicate_id", "ragged_gt", "short_frames",
                                  "not_utf8"])
def test_track_eval_checks_its_inputs(tmp_path, case):
    gt, pred = tmp_path / "gt.txt", tmp_path / "pred.txt"
    gt_rows = [f"{f},{i},{10 + 50 * i + f},20,30,80,1,1,1" for f in range(1, 6) for i in (1, 2)]
    gt.write_text("\n".join(gt_rows) + "\n")
    pred_rows = [f"{f},{i},{10 + 50 * i + f},20,30,80,0.9,-1,-1,-1" for f in range(1, 6) for i in (1, 2)]
    pred.write_text("\n".join(pred_rows) + "\n")
    args = ["track-eval", "--gt", gt, "--pred", pred]
    if case == "six_columns":  # valid MOT rows without the score columns: scored as they are
        pred.write_text("\n".join(",".join(r.split(",")[:6]) for r in pred_rows) + "\n")
        result = runner.invoke(app, [str(a) for a in args + ["--json"]])
        assert result.exit_code == 0 and json.loads(result.stdout)["IDF1"] == pytest.approx(100.0)
    elif case == "det_as_pred":
        pred.write_text("\n".join(r.replace(f",{r.split(',')[1]},", ",-1,", 1) for r in pred_rows) + "\n")
        refused(args, "pred.txt", "looks like detections")
    elif case == "duplicate_id":
        pred.write_text("\n".join(pred_rows + ["3,1,200,20,30,80,0.9,-1,-1,-1"]) + "\n")
        refused(args, "pred.txt", "id 1 appears twice in frame 3")
    elif case == "ragged_gt":  # some lines with 6 values, others with 9: each completed with defaults
        gt.write_text("\n".join(r if k % 2 else ",".join(r.split(",")[:6]) for k, r in enumerate(gt_rows)) + "\n")
        result = runner.invoke(app, [str(a) for a in args + ["--json"]])
        assert result.exit_code == 0 and json.loads(result.stdout)["IDF1"] == pytest.approx(100.0)
    elif case == "short_frames":
        refused(args + ["--frames", "3"], "--frames 3", "frame 5")
    else:
        pred.write_bytes("\n".join(pred_rows).encode() + b"\n# caf\xe9\n")
        refused(args, "pred.txt", "not UTF-8")


# ---- galleries: atomic create, idempotent add -----------------------------------------------

@pytest.mark.slow
def test_a_failed_milvus_create_leaves_nothing_and_can_be_retried(tmp_path):
    gal = tmp_path / "gal"
    refused(["gallery", "create", gal, "--engine", "milvus", "--milvus-uri", "http://127.0.0.1:9"],
            "cannot connect to Milvus at http://127.0.0.1:9")
    assert not gal.exists()
    (tmp_path / "kept").mkdir()  # a folder the user made is kept, only the gallery files go
    refused(["gallery", "create", tmp_path / "kept", "--engine", "milvus", "--milvus-uri", "http://127.0.0.1:9"],
            "cannot connect")
    assert (tmp_path / "kept").is_dir() and not any((tmp_path / "kept").iterdir())
    result = runner.invoke(app, ["gallery", "create", str(gal), "--engine", "milvus", "--milvus-uri",
                                 str(tmp_path / "lite.db")])
    assert result.exit_code == 0, result.output


def test_gallery_add_again_adds_only_what_is_missing(tmp_path, monkeypatch):
    folder = tmp_path / "crops"
    folder.mkdir()
    for p in CROPS[:5]:
        (folder / p.name).write_bytes(p.read_bytes())
    gal = tmp_path / "gal"
    assert runner.invoke(app, ["gallery", "create", str(gal)]).exit_code == 0
    # an add killed after its first chunk (2 images) was committed:
    assert runner.invoke(app, ["gallery", "add", str(gal), *map(str, sorted(folder.iterdir())[:2]), "-q"]).exit_code == 0
    result = runner.invoke(app, ["gallery", "add", str(gal), str(folder), "-q", "--chunk", "2"])
    assert result.exit_code == 0 and "added 3 images" in result.stdout and "5 in all" in result.stdout
    assert "skipped 2 images already in the gallery" in result.stderr
    with Gallery.open(gal) as g:
        sources = [m["source"] for m in g.metadata(range(1, 6)).values()]
    assert sorted(sources) == sorted(str(p.resolve()) for p in folder.iterdir())

    import reidkit.inference.resolve as resolve

    def no_model(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(resolve, "resolve_embedder", no_model)
    refused(["gallery", "create", gal], "already holds a gallery")  # refused before loading any model
    result = runner.invoke(app, ["gallery", "add", str(gal), str(folder), "-q"])
    assert result.exit_code == 0 and "added 0 images" in result.stdout  # nothing to embed: no model either


def test_gallery_csv_and_filter_values_are_checked(tmp_path):
    from reidkit.retrieval.sources import read_metadata_csv

    csv = tmp_path / "m.csv"
    csv.write_text(f"path,camera\n{CROPS[0]},lobby,extra\n")
    with pytest.raises(ValueError, match=r"m\.csv:2: 3 fields, but the header names 2"):
        read_metadata_csv(csv)
    csv.write_bytes(b"path,camera\nx.jpg,caf\xe9\n")
    with pytest.raises(ValueError, match=r"m\.csv: not UTF-8"):
        read_metadata_csv(csv)
    csv.write_text("path,timestamp\nx.jpg,nan\n")
    with pytest.raises(ValueError, match=r"m\.csv:2: timestamp 'nan' is not a finite number"):
        read_metadata_csv(csv)
    gal = tmp_path / "gal"
    Gallery.create(gal, "m", 4).close()
    refused(["gallery", "search", gal, CROPS[0], "--since", "nan"], "--since nan")


# ---- export, eval-features, data synth ------------------------------------------------------

def test_export_checks_the_opset_and_skips_unreadable_images_before_writing(tmp_path):
    out = tmp_path / "m.onnx"
    refused(["export", "onnx", "-o", out, "--opset", "99"], "--opset 99", "11 to")
    assert not out.exists()
    images = crops_with(tmp_path, ("0009_c1s1_000001_00.jpg", b"\xff\xd8 broken"))
    result = runner.invoke(app, ["export", "onnx", "-o", str(out), "--images", str(images)])
    assert result.exit_code == 0 and out.is_file() and "skipped 1 unreadable" in result.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.jpg").write_bytes(b"nope")
    refused(["export", "onnx", "-o", tmp_path / "n.onnx", "--images", tmp_path / "bad"], "could be read")
    assert not (tmp_path / "n.onnx").exists()


def test_eval_features_on_damaged_files(tmp_path):
    from conftest import FIXTURES

    good = (FIXTURES / "eval" / "small.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[:len(good) // 2])
    refused(["eval-features", tmp_path / "cut.npz"], "cut.npz", "truncated or damaged")
    np.save(tmp_path / "one.npy", np.zeros((3, 4)))
    refused(["eval-features", tmp_path / "one.npy"], "one.npy", "a single array")


def test_data_synth_names_bad_options(tmp_path):
    for args, needle in ((["--seed", "-1"], "--seed"), (["--distractors", "-1"], "--distractors"),
                         (["--cameras", "12"], "--cameras")):
        result = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "s"), *args])
        assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


# ---- no traceback reaches a user ------------------------------------------------------------

PROBE = """
import contextlib, io, json, sys, traceback
from reidkit.cli.main import app
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            app(args, prog_name="reid")
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            code, _ = 1, err.write(traceback.format_exc())
    results.append([args, code, err.getvalue()])
print(json.dumps(results))
"""


@pytest.mark.slow
def test_no_subcommand_prints_a_traceback_on_bad_input(tmp_path):
    """The console entry point (not the test runner) on a bad input of each subcommand."""
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    npz = tmp_path / "x.npz"
    npz.write_bytes(b"PK\x03\x04 cut")
    cases = [
        ["eval-features", str(npz)], ["config", "show", str(junk)], ["data", "summary", "Market1501", str(tmp_path)],
        ["train", "-c", str(tmp_path / "missing.yml")], ["eval", "--root", str(tmp_path)],
        ["extract", str(junk), "-o", str(tmp_path / "e")], ["export", "onnx", "-o", str(tmp_path), "--opset", "5"],
        ["visualize", "--root", str(tmp_path), "-o", str(tmp_path / "v")],
        ["gallery", "search", str(tmp_path), str(junk)], ["gallery", "info", str(tmp_path / "nope")],
        ["track", str(junk), "-o", str(tmp_path / "t"), "--reid", "none"],
        ["track-eval", "--gt", str(junk), "--pred", str(junk)], ["demo", "--root", str(tmp_path), "--no-pipeline"],
    ]
    # One fresh process calls the console entry point (``reid = reidkit.cli.main:app``) once per case,
    # as the script would; an exception escaping it is what would reach the user as a traceback.
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for args, code, stderr in json.loads(run.stdout.strip().splitlines()[-1]):
        assert code == 2 and "Traceback" not in stderr, (args, stderr[-3000:])
        lines = stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and sum(ln.startswith("error:") for ln in lines) == 1, (args, lines)
    pipe = subprocess.run(f"{sys.executable} -m reidkit.cli.main config show | head -1", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert pipe.stdout.strip() and pipe.stderr == ""  # a closed pipe ends quietly
