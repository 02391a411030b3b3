"""Samplers, transforms, learning-rate schedule and checkpoint I/O."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from reidkit.checkpoint import CheckpointError, atomic_save, load_model_weights
from reidkit.config import load_config
from reidkit.data.samplers import IdentityBatchSampler, ShuffleBatchSampler
from reidkit.data.transforms import build_transform, downscale, random_erase
from reidkit.engine.solver import build_optimizer, lr_factor, param_groups
from reidkit.modeling import build_model

PIDS = [p for p in range(10) for _ in range(p % 4 + 1)]  # 1 to 4 images per identity
CAMS = [i % 3 for i in range(len(PIDS))]


def test_identity_sampler_makes_pk_batches_deterministically():
    s = IdentityBatchSampler(PIDS, CAMS, batch_size=8, num_instances=2, seed=3)
    batches = list(s.epoch(0))
    assert len(batches) == s.iters_per_epoch == len(PIDS) // 8
    for b in batches:
        idx = [i for i, _ in b]
        counts = Counter(PIDS[i] for i in idx)
        assert len(counts) == 4 and set(counts.values()) == {2}
    assert batches == list(s.epoch(0))
    assert batches != list(s.epoch(1))
    assert list(s.epoch(0, start=1)) == batches[1:]


def test_identity_sampler_splits_batches_across_ranks():
    full = list(IdentityBatchSampler(PIDS, CAMS, 8, 2, seed=5).epoch(2))
    parts = [list(IdentityBatchSampler(PIDS, CAMS, 8, 2, seed=5, rank=r, world_size=2).epoch(2)) for r in (0, 1)]
    for whole, a, b in zip(full, *parts):
        assert a + b == whole
        assert not {PIDS[i] for i, _ in a} & {PIDS[i] for i, _ in b}  # whole identities per rank


def test_balanced_sampler_spreads_cameras():
    pids = [0] * 6 + [1] * 6
    cams = [0, 0, 0, 0, 0, 1] + [0, 1, 2, 0, 1, 2]
    s = IdentityBatchSampler(pids, cams, 6, 3, seed=0, balanced=True)
    for b in s.epoch(0):
        for pid in (0, 1):
            got = {cams[i] for i, _ in b if pids[i] == pid}
            assert got == ({0, 1} if pid == 0 else {0, 1, 2})


def test_sampler_errors_are_clear():
    with pytest.raises(ValueError, match="multiple of DATALOADER.NUM_INSTANCE"):
        IdentityBatchSampler(PIDS, CAMS, 9, 2)
    with pytest.raises(ValueError, match="needs 8 identities but the training set has 2"):
        IdentityBatchSampler([0, 0, 1, 1], [0, 1, 0, 1], 16, 2)


def test_shuffle_sampler_covers_items_once_per_epoch():
    s = ShuffleBatchSampler(20, 5, seed=1)
    idx = [i for b in s.epoch(0) for i, _ in b]
    assert sorted(idx) == list(range(20))


def test_train_transform_depends_only_on_the_seed():
    cfg = load_config(None, ["INPUT.REA.ENABLED", "True", "INPUT.FLIP.ENABLED", "True", "INPUT.PADDING.ENABLED",
                             "True", "INPUT.CJ.ENABLED", "True", "INPUT.SIZE_TRAIN", "[64, 32]"])
    tf = build_transform(cfg, is_train=True)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 40, 3), dtype=np.uint8))
    a = tf(img, torch.Generator().manual_seed(11))
    b = tf(img, torch.Generator().manual_seed(11))
    c = tf(img, torch.Generator().manual_seed(12))
    assert a.shape == (3, 64, 32) and a.dtype == torch.float32 and a.max() > 1.5  # 0-255 scale
    assert torch.equal(a, b) and not torch.equal(a, c)
    test = build_transform(cfg, is_train=False)(img, torch.Generator())
    assert test.shape == (3, 256, 128)


def test_bad_transform_options_fail_at_build_time():
    cfg = load_config(None, ["INPUT.PADDING.ENABLED", "True", "INPUT.PADDING.MODE", "mirror"])
    with pytest.raises(ValueError, match="INPUT.PADDING.MODE.*'mirror'"):
        build_transform(cfg, is_train=True)


def test_downscale_removes_detail_finer_than_the_lower_resolution():
    # 1-pixel stripes: a camera at half the resolution or less cannot see them (grey), a full one can.
    stripes = np.zeros((64, 32, 3), np.uint8)
    stripes[:, ::2] = 255
    img = Image.fromarray(stripes)
    assert np.asarray(downscale(img, 1.0)).std() == pytest.approx(stripes.std())
    blurred = np.asarray(downscale(img, 0.5), np.float32)
    assert blurred.shape == stripes.shape and blurred.std() < 0.05 * stripes.std()
    assert abs(blurred.mean() - 127.5) < 2

    # In the train transform it happens with PROB, at a random factor in [MIN_SCALE, 1].
    opts = ["INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.DOWNSCALE.ENABLED", "True", "INPUT.DOWNSCALE.MIN_SCALE", "0.25"]
    stds = []
    for prob in ("0.0", "1.0"):
        tf = build_transform(load_config(None, [*opts, "INPUT.DOWNSCALE.PROB", prob]), is_train=True)
        stds.append(np.mean([tf(img, torch.Generator().manual_seed(s)).std().item() for s in range(20)]))
    assert stds[0] == pytest.approx(stripes.std(), rel=1e-3) and stds[1] < 0.7 * stds[0]
    with pytest.raises(ValueError, match="INPUT.DOWNSCALE.MIN_SCALE"):
        load_config(None, ["INPUT.DOWNSCALE.MIN_SCALE", "0"])


def test_grayscale_gives_each_pixel_its_luma_in_all_channels_with_prob():
    rgb = np.random.default_rng(0).integers(0, 256, (64, 32, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    # ITU-R 601 luma, which PIL's "L" conversion rounds (to within 1 of the exact value)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    opts = ["INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.GRAYSCALE.ENABLED", "True"]
    grey = build_transform(load_config(None, [*opts, "INPUT.GRAYSCALE.PROB", "1.0"]), is_train=True)
    x = grey(img, torch.Generator().manual_seed(0)).numpy()
    assert np.array_equal(x[0], x[1]) and np.array_equal(x[1], x[2])
    assert np.abs(x[0] - luma).max() <= 1.0
    kept = build_transform(load_config(None, [*opts, "INPUT.GRAYSCALE.PROB", "0.0"]), is_train=True)
    assert np.array_equal(kept(img, torch.Generator().manual_seed(0)).numpy(), rgb.transpose(2, 0, 1).astype(np.float32))
    half = build_transform(load_config(None, [*opts, "INPUT.GRAYSCALE.PROB", "0.5"]), is_train=True)
    outs = [half(img, torch.Generator().manual_seed(s)) for s in range(40)]
    greyed = [bool((x[0] == x[1]).all()) for x in outs]
    assert 10 <= sum(greyed) <= 30  # 40 draws at p = 0.5: 20 expected, this range holds with p > 0.99


def test_random_erasing_fills_one_rectangle():
    x = torch.zeros(3, 40, 20)
    y = random_erase(x, torch.Generator().manual_seed(0), [1.0, 2.0, 3.0])
    changed = (y != 0).any(0)
    rows, cols = changed.any(1).nonzero(), changed.any(0).nonzero()
    area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    assert changed.sum() == area > 0 and y[1][changed].eq(2.0).all()


def test_lr_schedule_warmup_steps_and_cosine():
    cfg = load_config(None, ["SOLVER.WARMUP_ITERS", "10", "SOLVER.WARMUP_FACTOR", "0.1", "SOLVER.STEPS", "[2, 4]",
                             "SOLVER.GAMMA", "0.1"])
    assert lr_factor(cfg, 0, 10) == pytest.approx(0.1)
    assert lr_factor(cfg, 5, 10) == pytest.approx(0.1 * 0.5 + 0.5)
    assert lr_factor(cfg, 10, 10) == 1.0 and lr_factor(cfg, 25, 10) == pytest.approx(0.1)
    assert lr_factor(cfg, 45, 10) == pytest.approx(0.01)
    cos = load_config(None, ["SOLVER.SCHED", "CosineAnnealingLR", "SOLVER.MAX_EPOCH", "10", "SOLVER.DELAY_EPOCHS", "2",
                             "SOLVER.WARMUP_ITERS", "0", "SOLVER.BASE_LR", "0.1", "SOLVER.ETA_MIN_LR", "0.001"])
    assert lr_factor(cos, 15, 10) == 1.0
    assert lr_factor(cos, 60, 10) == pytest.approx(0.01 + 0.99 * 0.5)  # halfway through epochs 2..10
    assert lr_factor(cos, 99, 10) == pytest.approx(0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 7 / 8)))


def test_param_groups_apply_factors():
    cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.HEADS.NUM_CLASSES", "5", "SOLVER.BASE_LR", "0.1",
                             "SOLVER.HEADS_LR_FACTOR", "10", "SOLVER.BIAS_LR_FACTOR", "2", "SOLVER.WEIGHT_DECAY", "0.5",
                             "SOLVER.WEIGHT_DECAY_NORM", "0.0", "SOLVER.WEIGHT_DECAY_BIAS", "0.25",
                             "MODEL.HEADS.WITH_BNNECK", "True"])
    groups = {g["name"]: g for g in param_groups(cfg, build_model(cfg))}
    assert groups["backbone.conv1.weight"]["lr"] == 0.1 and groups["backbone.conv1.weight"]["weight_decay"] == 0.5
    assert groups["heads.weight"]["lr"] == pytest.approx(1.0)
    assert groups["backbone.bn1.bias"]["lr"] == pytest.approx(0.2) and groups["backbone.bn1.bias"]["weight_decay"] == 0.0
    assert "heads.bottleneck.0.bias" not in groups  # frozen BNNeck bias
    with pytest.raises(ValueError, match="SOLVER.OPT"):
        build_optimizer(load_config(None, ["SOLVER.OPT", "Lion"]), build_model(cfg))


def test_checkpoint_round_trip_and_architecture_errors(tmp_path):
    cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.HEADS.NUM_CLASSES", "5"])
    model = build_model(cfg)
    atomic_save({"model": model.state_dict(), "epoch": 3}, tmp_path / "a.pth")
    assert not list(tmp_path.glob(".a.pth.*"))  # no temporary left behind
    other = build_model(cfg)
    load_model_weights(other, tmp_path / "a.pth")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    more_classes = build_model(load_config(None, ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.HEADS.NUM_CLASSES", "9"]))
    load_model_weights(more_classes, tmp_path / "a.pth")  # a new classifier is fine
    deeper = build_model(load_config(None, ["MODEL.BACKBONE.DEPTH", "34x", "MODEL.HEADS.NUM_CLASSES", "5"]))
    with pytest.raises(CheckpointError, match="different architecture.*missing"):
        load_model_weights(deeper, tmp_path / "a.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_model_weights(deeper, tmp_path / "nope.pth")
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model_weights(deeper, tmp_path / "bad.pth")


def test_checkpoint_metadata_rebuilds_the_model(tmp_path):
    from reidkit.checkpoint import model_from_checkpoint
    from reidkit.engine.trainer import model_meta

    cfg = load_config(None, ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.HEADS.NUM_CLASSES", "7", "INPUT.SIZE_TEST", "[96, 48]",
                             "MODEL.HEADS.POOL_LAYER", "GeneralizedMeanPoolingP", "MODEL.HEADS.WITH_BNNECK", "True"])
    model = build_model(cfg).eval()
    atomic_save({"model": model.state_dict(), "meta": model_meta(cfg, model, 7)}, tmp_path / "m.pth")
    rebuilt, rebuilt_cfg = model_from_checkpoint(tmp_path / "m.pth")
    assert rebuilt_cfg.INPUT.SIZE_TEST == [96, 48] and rebuilt_cfg.MODEL.HEADS.POOL_LAYER == "GeneralizedMeanPoolingP"
    x = torch.rand(2, 3, 96, 48) * 255
    with torch.no_grad():
        assert torch.equal(model(x), rebuilt(x))
    atomic_save({"model": model.state_dict()}, tmp_path / "bare.pth")
    with pytest.raises(CheckpointError, match="carries no config"):
        model_from_checkpoint(tmp_path / "bare.pth")


_MALLINFO_PROBE = """
import ctypes, sys
import numpy as np
from reidkit.engine.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
block = np.ones(2**26)  # 512 MB, far above glibc's largest mmap threshold
print(applied, libc.mallinfo2().hblkhd, libc.mallinfo2().arena)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_keep_freed_memory_serves_large_blocks_from_the_heap_instead_of_mmap():
    def probe(mode):
        out = subprocess.run([sys.executable, "-c", _MALLINFO_PROBE, mode], capture_output=True, text=True, check=True)
        applied, mmapped, heap = out.stdout.split()
        return applied == "True", int(mmapped), int(heap)

    applied, mmapped, heap = probe("keep")
    assert applied and mmapped < 2**26 and heap >= 2**29
    _, default_mmapped, _ = probe("default")
    assert default_mmapped >= 2**29


def test_resume_forgets_metrics_rows_logged_after_the_checkpoint(tmp_path):
    from reidkit.engine.hooks import drop_rows_after

    path = tmp_path / "metrics.csv"
    path.write_text("iteration,epoch,loss\n20,0,1.5\n40,0,1.2\n60,1,1.1\n80,1,0.9\n")
    drop_rows_after(path, 40)
    assert path.read_text() == "iteration,epoch,loss\n20,0,1.5\n40,0,1.2\n"
    drop_rows_after(path, 100)
    assert path.read_text() == "iteration,epoch,loss\n20,0,1.5\n40,0,1.2\n"
    drop_rows_after(tmp_path / "absent.csv", 0)
    assert not (tmp_path / "absent.csv").exists()


def test_resumed_run_keeps_earlier_evaluations(tmp_path):
    """The evaluator's results and best mAP travel in the checkpoint: after a resume, eval.csv
    still lists the earlier epochs and model_best.pth is replaced only by a better model."""
    from types import SimpleNamespace

    from reidkit.engine.hooks import PeriodicEvaluator

    scores = iter([64.2, 69.7, 66.0])

    def fake_trainer(epoch):
        return SimpleNamespace(rank=0, output_dir=tmp_path, state=SimpleNamespace(epoch=epoch), finished=False,
                               checkpoint=lambda: {"model": {"epoch": torch.tensor(epoch)}, "meta": {}})

    def evaluate():
        return [("Market1501", {"Rank-1": 70.0, "mAP": next(scores)})]

    first = PeriodicEvaluator(evaluate, period=5)
    first.after_epoch(fake_trainer(5))
    first.after_epoch(fake_trainer(7))  # not an evaluation epoch
    saved = first.state_dict()
    resumed = PeriodicEvaluator(evaluate, period=5)  # a new process: nothing but the checkpoint
    resumed.load_state_dict(saved)
    resumed.after_epoch(fake_trainer(10))
    resumed.after_epoch(fake_trainer(15))
    rows = (tmp_path / "eval.csv").read_text().splitlines()
    assert rows == ["epoch,dataset,Rank-1,mAP", "5,Market1501,70.0,64.2", "10,Market1501,70.0,69.7",
                    "15,Market1501,70.0,66.0"]
    best = torch.load(tmp_path / "model_best.pth", weights_only=False)
    assert int(best["model"]["epoch"]) == 10 and best["meta"]["metrics"]["mAP"] == 69.7
