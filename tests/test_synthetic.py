"""The synthetic dataset: layout, determinism, and difficulty."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from reidkit.data.datasets import build_dataset
from reidkit.data.synthetic import generate
from reidkit.evaluation import evaluate
from reidkit.inference.extract import extract_query_gallery
from reidkit.modeling.color_histogram import ColorHistogramEmbedder


def digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*.jpg")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def test_layout_counts_and_determinism(tmp_path):
    counts = generate(tmp_path / "a", num_ids=10, num_cameras=3, images_per_camera=2, num_distractors=4, seed=3)
    assert counts == {"bounding_box_train": 5 * 3 * 2, "query": 5 * 2, "bounding_box_test": 5 * 3 * 2 - 10 + 4}
    ds = build_dataset("Market1501", tmp_path / "a")
    assert len({r.pid for r in ds.train}) == 5 and len({r.camid for r in ds.gallery}) == 3
    assert {r.pid for r in ds.query} <= {r.pid for r in ds.gallery}
    assert sum(r.pid == 0 for r in ds.gallery) == 4
    generate(tmp_path / "b", num_ids=10, num_cameras=3, images_per_camera=2, num_distractors=4, seed=3)
    generate(tmp_path / "c", num_ids=10, num_cameras=3, images_per_camera=2, num_distractors=4, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_never_overwrites_a_foreign_folder(tmp_path):
    (tmp_path / "query").mkdir()
    precious = tmp_path / "query" / "0001_c1s1_000001_00.jpg"
    precious.write_bytes(b"real data")
    with pytest.raises(ValueError, match="not empty and was not made by"):
        generate(tmp_path, num_ids=4)
    assert precious.read_bytes() == b"real data"
    generate(tmp_path / "synth", num_ids=4, num_cameras=2, num_distractors=0)
    first = digest(tmp_path / "synth")
    generate(tmp_path / "synth", num_ids=4, num_cameras=2, num_distractors=0)  # its own output: replaced
    assert digest(tmp_path / "synth") == first


def test_rejects_degenerate_sizes(tmp_path):
    with pytest.raises(ValueError, match="at least 2 identities"):
        generate(tmp_path, num_ids=1)


@pytest.mark.slow
def test_difficulty_between_chance_and_trivial(tmp_path):
    """Hand-crafted colour features find some people but far from all; random features almost none."""
    generate(tmp_path, num_ids=120, num_cameras=4, seed=0)
    ds = build_dataset("Market1501", tmp_path)
    arrays = extract_query_gallery(ColorHistogramEmbedder(), ds, progress=False).arrays
    hist = evaluate(arrays, roc=False)
    rng = np.random.default_rng(0)
    noise = dict(arrays, q_feat=rng.standard_normal(arrays["q_feat"].shape).astype(np.float32),
                 g_feat=rng.standard_normal(arrays["g_feat"].shape).astype(np.float32))
    chance = evaluate(noise, roc=False)
    assert chance["mAP"] < 10
    assert 15 < hist["Rank-1"] < 80 and hist["mAP"] > 2 * chance["mAP"]
