"""Training end to end: it learns, it resumes exactly, and DDP ranks stay identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reidkit.config import load_config
from reidkit.data.synthetic import generate
from reidkit.engine import launch
from reidkit.engine.hooks import Checkpointer, Hook, LRSchedule
from reidkit.engine.trainer import Trainer
from reidkit.images import ImageReadError

REPO = Path(__file__).parents[1]
TINY = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.PRETRAIN", "False",
        "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "INPUT.PADDING.SIZE", "4",
        "SOLVER.IMS_PER_BATCH", "16", "SOLVER.MAX_EPOCH", "3", "SOLVER.WARMUP_ITERS", "5", "SOLVER.AMP.ENABLED", "False",
        "SOLVER.CHECKPOINT_PERIOD", "10", "TEST.EVAL_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.NUM_INSTANCE", "4"]


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, num_ids=40, num_cameras=3, images_per_camera=3, num_distractors=5, seed=2)
    return root


@pytest.fixture(scope="module")
def small_synth_root(tmp_path_factory):
    """Fewer people: 13 steps an epoch, enough for resuming in the middle of one."""
    root = tmp_path_factory.mktemp("small_synth")
    generate(root, num_ids=24, num_cameras=3, images_per_camera=3, num_distractors=5, seed=2)
    return root


def tiny_cfg(root, out, *extra):
    return load_config(REPO / "configs" / "Base-bagtricks.yml",
                       [*TINY, "DATASETS.ROOT", str(root), "OUTPUT_DIR", str(out), *extra])


def make_trainer(cfg, hooks):
    launch.seed_everything(cfg.SEED)
    records = launch.train_records(cfg)
    model = launch.prepare_model(cfg, len({r.pid for r in records}), torch.device("cpu"), 1, 0)
    return Trainer(cfg, model, records, [], cfg.OUTPUT_DIR, hooks=hooks, progress=False)


class StopAt(Hook):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self, t):
        if t.state.iteration == self.iteration:
            raise KeyboardInterrupt


def test_resume_mid_epoch_reproduces_uninterrupted_weights(small_synth_root, tmp_path):
    synth_root = small_synth_root
    two_epochs = ("SOLVER.MAX_EPOCH", "2")
    full = make_trainer(tiny_cfg(synth_root, tmp_path / "full", *two_epochs), [LRSchedule()])
    full.train()
    per_epoch = full.iters_per_epoch
    stop = per_epoch + per_epoch // 2  # in the middle of the second epoch
    cfg = tiny_cfg(synth_root, tmp_path / "cut", *two_epochs)
    ended = []

    class Ended(Hook):
        def after_train(self, t):
            ended.append(t.finished)

    cut = make_trainer(cfg, [LRSchedule(), Checkpointer(every_seconds=0.0), StopAt(stop), Ended()])
    with pytest.raises(KeyboardInterrupt):
        cut.train()
    # after_train ran although a hook raised, and a run that did not finish writes no final model
    assert ended == [False] and (tmp_path / "cut" / "last.pth").exists()
    assert not (tmp_path / "cut" / "model_final.pth").exists()
    resumed = make_trainer(cfg, [LRSchedule(), Checkpointer()])
    resumed.resume(tmp_path / "cut" / "last.pth")
    assert resumed.state.iteration == stop and 0 < resumed.state.step_in_epoch < per_epoch
    resumed.train()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
    # and training changed the weights at all
    fresh = make_trainer(tiny_cfg(synth_root, tmp_path / "fresh", *two_epochs), []).model.state_dict()
    assert max((a[k].float() - fresh[k].float()).abs().max().item() for k in a) > 1e-3


def _reid(*args, cwd=REPO):
    return [sys.executable, "-m", "reidkit.cli.main", *args]


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(synth_root, tmp_path):
    cfg_args = [str(x) for x in [*TINY, "DATASETS.ROOT", synth_root, "SOLVER.MAX_EPOCH", "2"]]
    base = ["train", "-c", str(REPO / "configs" / "Base-bagtricks.yml"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread each: the two first runs share the cores
    errors = (tmp_path / "full.err").open("w")
    full = subprocess.Popen(_reid(*base, *cfg_args, "OUTPUT_DIR", str(tmp_path / "full")), env=env,
                            stdout=subprocess.DEVNULL, stderr=errors)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_reid(*base, *cfg_args, "OUTPUT_DIR", str(out)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    deadline = time.monotonic() + 300
    while not (out / "last.pth").exists():  # written after the first of two epochs
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.3)  # into the second epoch (several seconds long here)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "model_final.pth").exists()
    subprocess.run(_reid(*base, *cfg_args, "OUTPUT_DIR", str(out), "--resume"), check=True, capture_output=True,
                   env=env)
    code = full.wait(300)
    errors.close()
    assert code == 0, (tmp_path / "full.err").read_text()[-3000:]
    a = torch.load(tmp_path / "full" / "model_final.pth", weights_only=False)["model"]
    b = torch.load(out / "model_final.pth", weights_only=False)["model"]
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-6
    logged = [int(line.split(",")[0]) for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == sorted(set(logged))  # the killed run's rows past its checkpoint are gone


@pytest.mark.slow
def test_ddp_two_processes_stay_identical(synth_root, tmp_path):
    script = Path(__file__).parent / "ddp_worker.py"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", str(script),
           str(synth_root), str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    assert set(r0) == set(r1)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    start = torch.load(tmp_path / "rank0_start.pt")
    assert any(not torch.equal(start[k], r0[k]) for k in r0)


@pytest.mark.slow
def test_short_run_lifts_map_far_above_the_untrained_model(tmp_path):
    """Lite0 from ImageNet, 3 short epochs on synthetic people (about a minute on one thread)."""
    root = tmp_path / "data"
    generate(root, num_ids=120, num_cameras=3, images_per_camera=3, num_distractors=20, seed=1)
    common = ["-c", str(REPO / "configs" / "Synth" / "lite0_quick.yml"), "--json", "--no-progress",
              "DATASETS.ROOT", str(root)]
    torch.manual_seed(0)
    untrained = launch.prepare_model(load_config(REPO / "configs" / "Synth" / "lite0_quick.yml"), 60,
                                     torch.device("cpu"), 1, 0)
    from reidkit.checkpoint import atomic_save

    atomic_save({"model": untrained.state_dict()}, tmp_path / "untrained.pth")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the numbers below are one thread's
    before = subprocess.run(_reid("train", *common, "--eval-only", "OUTPUT_DIR", str(tmp_path / "e"),
                                  "MODEL.WEIGHTS", str(tmp_path / "untrained.pth")),
                            check=True, capture_output=True, text=True, env=env)
    after = subprocess.run(_reid("train", *common, "OUTPUT_DIR", str(tmp_path / "t")),
                           check=True, capture_output=True, text=True, env=env)
    m0 = json.loads(before.stdout)["Market1501"]["mAP"]
    m1 = json.loads(after.stdout)["Market1501"]["mAP"]
    # seen: 10.4 -> 56.8 with these settings
    assert m0 < 25 and m1 > m0 + 25


def test_unreadable_images_are_skipped_and_counted_or_fatal_when_strict(tmp_path):
    root = tmp_path / "data"
    generate(root, num_ids=20, num_cameras=2, images_per_camera=2, num_distractors=0, seed=4)
    # every image of one identity: 5 iterations of 4 identities walk a permutation of all 10
    broken_all = sorted((root / "bounding_box_train").glob("0003_*.jpg"))
    for path in broken_all:
        path.write_bytes(b"not a jpeg")
    one_epoch = ("SOLVER.MAX_EPOCH", "1", "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_INSTANCE", "2")
    state = make_trainer(tiny_cfg(root, tmp_path / "lenient", *one_epoch), [LRSchedule()]).train()
    assert state.skipped_images >= 2 and state.iteration == 5
    strict = make_trainer(tiny_cfg(root, tmp_path / "strict", *one_epoch, "DATALOADER.STRICT", "True"), [LRSchedule()])
    with pytest.raises(ImageReadError, match=r"0003_.*not a readable image.*DATALOADER.STRICT"):
        strict.train()
