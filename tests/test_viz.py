"""reid visualize: rank lists follow the protocol, files are complete PNGs, the report is self-contained."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image
from typer.testing import CliRunner

from reidkit.cli.main import app
from reidkit.evaluation import evaluate, pairwise_distance
from reidkit.samples import MARKET1501_MINI
from reidkit.viz import query_order, ranked_gallery, write_visualization

IMAGES = sorted((FIXTURES / "fastreid_model" / "images").glob("*.jpg"))
runner = CliRunner()


def test_ranked_gallery_drops_same_person_same_camera_and_sorts_by_distance():
    rng = np.random.default_rng(0)
    g_pids = rng.integers(0, 4, 30)
    g_cams = rng.integers(0, 3, 30)
    row = rng.random(30)
    got = ranked_gallery(row, 2, 1, g_pids, g_cams, [f"g{j}" for j in range(30)], max_rank=8)
    # plain reference: every allowed item, sorted by distance then index
    allowed = [j for j in range(30) if not (g_pids[j] == 2 and g_cams[j] == 1)]
    want = sorted(allowed, key=lambda j: (row[j], j))[:8]
    assert [r.path for r in got] == [f"g{j}" for j in want]
    assert [r.correct for r in got] == [bool(g_pids[j] == 2) for j in want]
    assert all(a.distance <= b.distance for a, b in zip(got, got[1:]))


def test_query_order_sorts_valid_queries_by_ap():
    valid = np.array([True, False, True, True])
    ap = np.array([0.5, 0.2, 0.9])
    assert query_order(ap, valid, "ascending") == [(2, 0.2), (0, 0.5), (3, 0.9)]
    assert query_order(ap, valid, "descending") == [(3, 0.9), (0, 0.5), (2, 0.2)]
    assert query_order(ap, valid, "none") == [(0, 0.5), (2, 0.2), (3, 0.9)]
    with pytest.raises(ValueError, match="ascending, descending, none"):
        query_order(ap, valid, "random")


def test_write_visualization_files_and_self_contained_report(tmp_path):
    rng = np.random.default_rng(1)
    q_idx, g_idx = [0, 2, 4, 6], list(range(16))
    pids = np.array([int(p.name[:4]) for p in IMAGES])
    cams = np.array([int(p.name[6]) - 1 for p in IMAGES])
    feats = rng.normal(size=(16, 8)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    metrics = write_visualization(
        tmp_path, feats[q_idx], feats[g_idx], pids[q_idx], pids[g_idx], cams[q_idx], cams[g_idx],
        [str(IMAGES[i]) for i in q_idx], [str(IMAGES[i]) for i in g_idx], num_vis=3, max_rank=5, report_queries=2)
    want = evaluate({"distmat": pairwise_distance(feats[q_idx], feats[g_idx]), "q_pids": pids[q_idx],
                     "g_pids": pids[g_idx], "q_camids": cams[q_idx], "g_camids": cams[g_idx]})
    assert metrics == pytest.approx(want) and json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(want)
    lists = sorted((tmp_path / "rank_lists").glob("*.png"))
    assert len(lists) == 3
    aps = [float(re.match(r"\d+_ap([\d.]+)_", p.name).group(1)) for p in lists]
    assert aps == sorted(aps)
    widths = {Image.open(p).size[0] for p in lists}
    assert len(widths) == 1 and widths.pop() > 500  # 6 panels side by side
    for name in ("roc.png", "distances.png"):
        Image.open(tmp_path / name).verify()
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 + 2 + 2
    assert not re.search(r'src="(?!data:)', page) and "<table>" in page and "mAP" in page


@pytest.mark.slow
def test_reid_visualize_on_the_shipped_sample(tmp_path):
    result = runner.invoke(app, ["visualize", "--root", str(MARKET1501_MINI), "-o", str(tmp_path), "-q",
                                 "--num-vis", "4", "--max-rank", "3", "--rank-sort", "descending"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "rank_lists").glob("*.png"))) == 4
    direct = runner.invoke(app, ["eval", "--root", str(MARKET1501_MINI), "--json"])
    want = json.loads(direct.output.strip().splitlines()[-1])
    got = json.loads((tmp_path / "metrics.json").read_text())
    assert all(got[k] == pytest.approx(want[k], abs=1e-6) for k in ("Rank-1", "mAP", "mINP"))
    result = runner.invoke(app, ["visualize", "--root", str(MARKET1501_MINI), "-o", str(tmp_path), "--rank-sort", "x"])
    assert result.exit_code == 2 and "--rank-sort must be one of" in result.output
