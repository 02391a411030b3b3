"""Embedder: fast-reid parity on both preprocessing paths, batching, flip, file handling, reid extract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image
from typer.testing import CliRunner

from reidkit.cli.main import app
from reidkit.config import load_config
from reidkit.inference import Embedder, expand_inputs, parse_ids
from reidkit.inference.preprocess import resize

MODEL = FIXTURES / "fastreid_model"
FASTREID_CFG = FIXTURES / "fastreid_configs" / "Market1501" / "bagtricks_R50.yml"
runner = CliRunner()


@pytest.fixture(scope="module")
def fastreid_embedder():
    cfg = load_config(FASTREID_CFG, ["MODEL.DEVICE", "cpu"])
    return Embedder.from_config(cfg, MODEL / "bagtricks_R50.pth.xz", batch_size=5)


@pytest.mark.parametrize("path", ["demo", "loader"])
def test_fastreid_checkpoint_gives_fastreid_features_on_both_paths(fastreid_embedder, path):
    want = np.load(MODEL / f"expected_{path}.npz")
    fastreid_embedder.preprocess = path
    feats, ok, failed = fastreid_embedder.embed_files([MODEL / "images" / n for n in want["names"]])
    assert failed == [] and ok == list(range(len(want["names"])))
    cos = (feats * want["feats_norm"]).sum(1)
    assert cos.min() >= 0.9999, cos.min()
    other = np.load(MODEL / f"expected_{'loader' if path == 'demo' else 'demo'}.npz")["feats_norm"]
    # the two paths differ only by resizing, and measurably so: matching one is not matching both
    assert (feats * other).sum(1).min() < 0.999


def test_embed_arrays_equals_embed_files_and_is_unit_norm(fastreid_embedder):
    fastreid_embedder.preprocess = "loader"
    paths = sorted((MODEL / "images").glob("*.jpg"))[:7]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    from_arrays = fastreid_embedder.embed(images)
    from_files, _, _ = fastreid_embedder.embed_files(paths)
    np.testing.assert_allclose(from_arrays, from_files, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(from_arrays, axis=1), 1, atol=1e-5)
    # batch composition must not change a feature (eval-mode BN, no cross-sample ops)
    one_by_one = np.concatenate([fastreid_embedder.embed([im]) for im in images])
    np.testing.assert_allclose(from_arrays, one_by_one, atol=1e-5)
    assert fastreid_embedder.embed([]).shape == (0, 2048)


def test_flip_averages_raw_features_with_the_mirror_image():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(6))
    model(torch.zeros(1, 3, 16, 8))
    emb = Embedder.from_model(model, (16, 8), flip=True)
    image = np.random.default_rng(0).integers(0, 256, (16, 8, 3), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
        raw = (model(x) + model(x.flip(3))) / 2
    want = (raw / raw.norm(dim=1, keepdim=True)).numpy()
    np.testing.assert_allclose(emb.embed([image]), want, atol=1e-5)


def test_bad_images_are_clear_errors_or_skipped(fastreid_embedder, tmp_path):
    with pytest.raises(ValueError, match=r"image 1: expected an RGB uint8 array of shape \(H, W, 3\)"):
        fastreid_embedder.embed([np.zeros((8, 4, 3), np.uint8), np.zeros((8, 4, 3), np.float32)])
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    good = MODEL / "images" / "0004_c2s3_059152_00.jpg"
    feats, ok, failed = fastreid_embedder.embed_files([tmp_path / "broken.jpg", good, tmp_path / "gone.jpg"])
    assert ok == [1] and feats.shape == (1, 2048)
    assert [i for i, _ in failed] == [0, 2] and "broken.jpg" in failed[0][1] and "no such file" in failed[1][1]


def test_resize_paths_match_pil_and_opencv():
    import cv2

    image = np.random.default_rng(1).integers(0, 256, (300, 97, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize(image, (256, 128), "loader"),
                                  np.asarray(Image.fromarray(image).resize((128, 256), Image.BICUBIC)))
    np.testing.assert_array_equal(resize(image, (256, 128), "demo"),
                                  cv2.resize(image, (128, 256), interpolation=cv2.INTER_CUBIC))


def test_expand_inputs_files_folders_globs_and_errors(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["a/2.jpg", "a/b/1.png", "a/notes.txt", "3.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    got = expand_inputs([tmp_path / "3.jpg", tmp_path / "a", str(tmp_path / "*.jpg")])
    assert got == [tmp_path / "3.jpg", tmp_path / "a" / "2.jpg", tmp_path / "a" / "b" / "1.png"]
    with pytest.raises(FileNotFoundError, match="input not found"):
        expand_inputs([tmp_path / "nope.jpg"])
    with pytest.raises(FileNotFoundError, match="no files match"):
        expand_inputs([str(tmp_path / "*.bmp")])
    assert parse_ids(["x/0004_c2s3_059152_00.jpg", "-1_c6s1.jpg"])[0].tolist() == [4, -1]
    assert parse_ids(["0004_c2.jpg", "frame.jpg"]) is None


def test_reid_extract_writes_features_and_lists_unreadable_images(tmp_path):
    images = tmp_path / "in"
    images.mkdir()
    for p in sorted((MODEL / "images").glob("*.jpg"))[:4]:
        (images / p.name).write_bytes(p.read_bytes())
    (images / "0009_c1s1_000001_00.jpg").write_bytes(b"truncated")
    out = tmp_path / "out"
    result = runner.invoke(app, ["extract", str(images), "-o", str(out), "-q", "--config-file", str(FASTREID_CFG),
                                 "--opts", "MODEL.WEIGHTS", str(MODEL / "bagtricks_R50.pth.xz")])
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable images" in result.output and "0009_c1s1_000001_00.jpg" in result.output
    with np.load(out / "features.npz") as f:
        assert f["feats"].shape == (4, 2048) and f["pids"].tolist() == [4, 4, 5, 5]
        assert f["camids"].tolist() == [1, 5, 0, 1] and len(f["names"]) == 4
        want = np.load(MODEL / "expected_loader.npz")
        index = {n: i for i, n in enumerate(want["names"])}
        rows = [index[n.rsplit("/", 1)[-1]] for n in f["names"]]
        assert ((f["feats"] * want["feats_norm"][rows]).sum(1) >= 0.9999).all()
    result = runner.invoke(app, ["extract", str(images / "*.jpg"), "-o", str(tmp_path / "per"), "-q", "--per-image"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "per").glob("*.npy")) == sorted(
        p.stem + ".npy" for p in images.glob("*.jpg") if p.stat().st_size > 100)
    result = runner.invoke(app, ["extract", str(tmp_path / "missing"), "-o", str(out)])
    assert result.exit_code == 2 and "input not found" in result.output


def test_extract_then_eval_features_matches_eval_on_the_same_split(tmp_path):
    from reidkit.samples import MARKET1501_MINI

    for split in ("query", "bounding_box_test"):
        result = runner.invoke(app, ["extract", str(MARKET1501_MINI / split), "-o", str(tmp_path / split), "-q"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval-features", str(tmp_path / "query" / "features.npz"), "--gallery",
                                 str(tmp_path / "bounding_box_test" / "features.npz"), "--json", "--no-roc"])
    assert result.exit_code == 0, result.output
    via_files = json.loads(result.output)
    result = runner.invoke(app, ["eval", "--root", str(MARKET1501_MINI), "--json"])
    direct = json.loads(result.output.strip().splitlines()[-1])
    for key in ("Rank-1", "Rank-5", "mAP", "mINP"):
        assert via_files[key] == pytest.approx(direct[key], abs=1e-6), key


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "lite0.onnx"
    result = runner.invoke(app, ["export", "onnx", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path, result.output


def test_onnx_export_of_the_default_model_matches_torch_on_real_crops(default_onnx):
    import onnx

    path, output = default_onnx
    assert "max |torch - onnx| on 32 real images" in output
    proto = onnx.load(str(path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert "Ceil" not in {n.op_type for n in proto.graph.node}  # "same" padding exported as constants
    assert meta["reidkit.input_size"] == "256x128"
    torch_emb, onnx_emb = Embedder.default(), Embedder.from_onnx(path)
    assert onnx_emb.dim == torch_emb.dim == 1280 and onnx_emb.input_size == (256, 128)
    paths = sorted((MODEL / "images").glob("*.jpg"))
    for batch_size in (1, 5, 16):  # the batch axis is dynamic
        torch_emb.batch_size = onnx_emb.batch_size = batch_size
        want, _, _ = torch_emb.embed_files(paths)
        got, _, _ = onnx_emb.embed_files(paths)
        assert np.abs(want - got).max() <= 1e-4


def test_the_pipeline_runs_the_default_model_in_onnxruntime_with_torchs_features():
    from reidkit.inference.embedder import OnnxRunner, TorchRunner
    from reidkit.pipeline.components import make_embedder

    torch_emb, ort_emb = Embedder.default(), make_embedder("default", batch_size=4)
    assert isinstance(torch_emb.runner, TorchRunner) and isinstance(ort_emb.runner, OnnxRunner)
    assert ort_emb.dim == torch_emb.dim and ort_emb.input_size == torch_emb.input_size
    crops = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((MODEL / "images").glob("*.jpg"))]
    assert np.abs(torch_emb.embed(crops) - ort_emb.embed(crops)).max() <= 1e-4
    with pytest.raises(ValueError, match="unknown runtime 'tf'"):
        Embedder.default(runtime="tf")


@pytest.mark.slow
def test_onnx_export_of_a_fastreid_checkpoint_gives_fastreid_features(tmp_path):
    path = tmp_path / "r50.onnx"
    result = runner.invoke(app, ["export", "onnx", "-o", str(path), "-c", str(FASTREID_CFG),
                                 "--opts", "MODEL.WEIGHTS", str(MODEL / "bagtricks_R50.pth.xz")])
    assert result.exit_code == 0, result.output
    want = np.load(MODEL / "expected_demo.npz")
    feats, _, _ = Embedder.from_onnx(path, preprocess="demo").embed_files([MODEL / "images" / n for n in want["names"]])
    assert (feats * want["feats_norm"]).sum(1).min() >= 0.9999


def test_extract_with_onnx_and_bad_onnx_inputs(default_onnx, tmp_path):
    path, _ = default_onnx
    images = sorted((MODEL / "images").glob("*.jpg"))[:3]
    result = runner.invoke(app, ["extract", *map(str, images), "-o", str(tmp_path / "o"), "-q", "--onnx", str(path)])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "o" / "features.npz") as f:
        want, _, _ = Embedder.default().embed_files(images)
        assert np.abs(f["feats"] - want).max() <= 1e-4
    result = runner.invoke(app, ["extract", str(images[0]), "-o", str(tmp_path / "o"), "--onnx", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "ONNX model not found" in result.output
    (tmp_path / "bad.onnx").write_bytes(b"garbage")
    result = runner.invoke(app, ["extract", str(images[0]), "-o", str(tmp_path / "o"), "--onnx", str(tmp_path / "bad.onnx")])
    assert result.exit_code == 2 and "onnxruntime cannot load it" in result.output


def test_extract_flip_makes_features_mirror_invariant(tmp_path):
    originals, mirrored = tmp_path / "a", tmp_path / "b"
    originals.mkdir()
    mirrored.mkdir()
    for p in sorted((MODEL / "images").glob("*.jpg"))[:4]:
        image = Image.open(p).convert("RGB")
        image.save(originals / f"{p.stem}.png")
        image.transpose(Image.FLIP_LEFT_RIGHT).save(mirrored / f"{p.stem}.png")
    feats = {}
    for name, folder, extra in (("a", originals, ["--flip"]), ("b", mirrored, ["--flip"]), ("plain", mirrored, [])):
        result = runner.invoke(app, ["extract", str(folder), "-o", str(tmp_path / f"out_{name}"), "-q", *extra])
        assert result.exit_code == 0, result.output
        feats[name] = np.load(tmp_path / f"out_{name}" / "features.npz")["feats"]
    np.testing.assert_allclose(feats["a"], feats["b"], atol=1e-5)
    assert np.abs(feats["a"] - feats["plain"]).max() > 1e-3


def test_fold_batchnorm_matches_the_model_and_refuses_unsafe_folds():
    from reidkit.inference.fuse import fold_batchnorm
    from reidkit.modeling import build_model

    cfg = load_config(FASTREID_CFG, ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", "False",
                                     "MODEL.HEADS.NUM_CLASSES", "5"])
    torch.manual_seed(0)
    model = build_model(cfg)
    for m in model.modules():  # non-trivial statistics, so a wrong fold shows
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    x = torch.rand(3, 3, 64, 32) * 255
    folded = fold_batchnorm(model, x[:2])
    assert folded is not model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    with torch.no_grad():
        want, got = model(x), folded(x)
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5

    class SharedOutput(torch.nn.Module):  # the conv output also feeds a second path: folding would change it
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.bn = torch.nn.BatchNorm2d(4)
            self.bn.running_mean.fill_(2.0)

        def forward(self, x):
            y = self.conv(x)
            return (self.bn(y) + y).flatten(1)

    shared = SharedOutput().eval()
    assert fold_batchnorm(shared, x[:2]) is shared


@pytest.mark.parametrize("size", [(64, 32), (65, 33)])
def test_static_same_padding_matches_timms_run_time_padding(size):
    import timm
    from timm.layers import Conv2dSame

    from reidkit.inference.fuse import static_same_padding

    torch.manual_seed(0)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    x = torch.rand(2, 3, *size)
    static = static_same_padding(model, x[:1])
    assert sum(isinstance(m, Conv2dSame) for m in model.modules()) == 5  # the original is left alone
    assert not any(isinstance(m, Conv2dSame) for m in static.modules())
    with torch.no_grad():
        torch.testing.assert_close(static(x), model(x), rtol=1e-5, atol=1e-5)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    assert static_same_padding(plain, x) is plain


def test_onnx_exports_are_kept_and_reused_and_a_damaged_one_is_replaced(tmp_path, monkeypatch, caplog):
    import reidkit.inference.onnx_graph as onnx_model
    from reidkit.inference.onnx_cache import entry_path
    from reidkit.inference.resolve import ModelSpec, resolve_embedder

    monkeypatch.setenv("REIDKIT_CACHE_DIR", str(tmp_path / "cache"))
    crops = [np.random.default_rng(i).integers(0, 256, (120 + 10 * i, 50, 3), dtype=np.uint8) for i in range(3)]
    first = resolve_embedder(runtime="onnxruntime")
    kept = entry_path(ModelSpec().record()["fingerprint"])
    assert kept.is_file() and kept.parent == tmp_path / "cache" / "onnx"
    expected = first.embed(crops)

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the export was kept")

    monkeypatch.setattr(onnx_model, "onnx_bytes", no_export)
    again = resolve_embedder(runtime="onnxruntime")
    assert again.runtime == "onnxruntime" and again.name == first.name
    np.testing.assert_array_equal(again.embed(crops), expected)

    monkeypatch.undo()
    monkeypatch.setenv("REIDKIT_CACHE_DIR", str(tmp_path / "cache"))
    kept.write_bytes(kept.read_bytes()[:1000])  # cut short, as by a full disk
    with caplog.at_level("WARNING"):
        rebuilt = resolve_embedder(runtime="onnxruntime")
    assert "damaged" in caplog.text and kept.stat().st_size > 1_000_000
    np.testing.assert_allclose(rebuilt.embed(crops), expected, atol=1e-6)

    kept.unlink()
    monkeypatch.setenv("REIDKIT_CACHE_DIR", "off")
    assert entry_path("abc") is None
    resolve_embedder(runtime="onnxruntime")
    assert not list((tmp_path / "cache" / "onnx").iterdir())  # off: nothing kept
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("REIDKIT_CACHE_DIR", str(tmp_path / "a_file" / "cache"))  # cannot be created
    np.testing.assert_allclose(resolve_embedder(runtime="onnxruntime").embed(crops), expected, atol=1e-6)
