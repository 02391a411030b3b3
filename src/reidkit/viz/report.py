"""What ``reid visualize`` writes: rank-list PNGs, ROC and distance PNGs, and one HTML report.

The report is a single self-contained file (images embedded as data URIs) that opens in a
browser with no server: the metrics table, the ROC curve and distance histograms, and the rank
lists of the worst and the best queries by average precision.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..evaluation import pairwise_distance
from ..evaluation.rank import evaluate_rank
from ..evaluation.roc import pair_distances, roc_curve, tpr_at_fpr
from ..fileio import atomic_write, atomic_write_text
from .figures import RankedItem, distance_histogram_png, rank_list_png, roc_png

SORTS = ("ascending", "descending", "none")


def ranked_gallery(distmat_row: np.ndarray, q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray,
                   g_paths: Sequence[str], max_rank: int) -> list[RankedItem]:
    """The top ``max_rank`` gallery items for one query, nearest first, with the protocol's removals
    (same identity seen by the same camera) left out, as in the metrics."""
    order = np.argsort(distmat_row, kind="stable")
    keep = ~((g_pids[order] == q_pid) & (g_camids[order] == q_camid))
    top = order[keep][:max_rank]
    return [RankedItem(str(g_paths[j]), float(distmat_row[j]), f"cam {int(g_camids[j]) + 1}", bool(g_pids[j] == q_pid)) for j in top]


def query_order(all_ap: np.ndarray, valid: np.ndarray, sort: str) -> list[tuple[int, float]]:
    """(query index, AP) of the queries that have a true match, in the requested AP order."""
    if sort not in SORTS:
        raise ValueError(f"unknown --rank-sort {sort!r}: expected one of {', '.join(SORTS)}")
    pairs = list(zip(np.flatnonzero(valid).tolist(), all_ap.tolist()))
    if sort == "ascending":
        pairs.sort(key=lambda p: p[1])
    elif sort == "descending":
        pairs.sort(key=lambda p: -p[1])
    return pairs


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write_visualization(out_dir: str | Path, q_feat: np.ndarray, g_feat: np.ndarray, q_pids, g_pids, q_camids,
                        g_camids, q_paths: Sequence[str], g_paths: Sequence[str], *, num_vis: int = 20,
                        max_rank: int = 10, rank_sort: str = "ascending", metric: str = "cosine",
                        report_queries: int = 6, title: str = "reidkit retrieval report") -> dict:
    """Write rank lists, ROC/histogram PNGs, ``metrics.json`` and ``report.html`` into ``out_dir``;
    returns the metrics."""
    out = Path(out_dir)
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a, np.int64) for a in (q_pids, g_pids, q_camids, g_camids))
    distmat = pairwise_distance(q_feat, g_feat, metric)
    result = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids)
    genuine, impostor = pair_distances(distmat, q_pids, g_pids, q_camids, g_camids)
    curve = roc_curve(genuine, impostor)
    metrics = {**result.summary(), **tpr_at_fpr(curve)}  # what evaluate() reports, from the same arrays
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))

    pngs: dict[int, bytes] = {}

    def png_for(i: int, ap: float) -> bytes:
        """A query's rank-list figure, drawn once even when it is also in the report."""
        if i not in pngs:
            ranked = ranked_gallery(distmat[i], q_pids[i], q_camids[i], g_pids, g_camids, g_paths, max_rank)
            pngs[i] = rank_list_png(q_paths[i], f"cam {int(q_camids[i]) + 1}", ranked,
                                    title=f"{Path(q_paths[i]).name}   AP {ap * 100:.1f}%")
        return pngs[i]

    order = query_order(result.all_ap, result.valid, rank_sort)
    for n, (i, ap) in enumerate(order[:num_vis]):
        name = f"{n:03d}_ap{ap * 100:05.1f}_{_safe(Path(q_paths[i]).stem)}.png"
        atomic_write(out / "rank_lists" / name, lambda f, png=png_for(i, ap): f.write(png))

    roc, hist = roc_png(curve, genuine.size, impostor.size), distance_histogram_png(genuine, impostor)
    atomic_write(out / "roc.png", lambda f: f.write(roc))
    atomic_write(out / "distances.png", lambda f: f.write(hist))

    by_ap = query_order(result.all_ap, result.valid, "ascending")
    worst = [(Path(q_paths[i]).name, png_for(i, ap)) for i, ap in by_ap[:report_queries]]
    best = [(Path(q_paths[i]).name, png_for(i, ap)) for i, ap in reversed(by_ap[-report_queries:])]
    page = _report_html(title, metrics, len(q_paths), len(g_paths), int(result.valid.sum()), roc, hist, worst, best)
    atomic_write_text(out / "report.html", page)
    return metrics


def _report_html(title: str, metrics: dict, n_query: int, n_gallery: int, n_valid: int, roc: bytes, hist: bytes,
                 worst: list, best: list) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in metrics)
    row = "".join(f"<td>{v:.2f}</td>" if not k.startswith("TPR") else f"<td>{v:.4f}</td>" for k, v in metrics.items())

    def grid(items) -> str:
        return "\n".join(f"<figure>{_img(png, f'rank list of {name}')}</figure>" for name, png in items)

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 4px 10px; text-align: right; }}
.plots img {{ max-width: 48%; margin-right: 1%; }}
figure {{ margin: 0.5em 0; }}
figure img {{ max-width: 100%; }}
.legend span {{ padding: 0 6px; color: white; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{n_query} queries ({n_valid} with a true match in another camera) against {n_gallery} gallery images.
Rank metrics in percent; TPR@FPR in fast-reid's convention (impostor pairs are the positive class).</p>
<table><tr>{head}</tr><tr>{row}</tr></table>
<div class="plots">{_img(roc, "ROC curve")}{_img(hist, "distance histograms")}</div>
<p class="legend">Frames: <span style="background:#3060c0">query</span>
<span style="background:#1a9850">same person</span> <span style="background:#d73027">another person</span>;
each title gives the rank, the distance and the camera. Same-camera images of the query's person are
left out, as the evaluation protocol does.</p>
<h2>Worst queries (lowest average precision)</h2>
{grid(worst)}
<h2>Best queries</h2>
{grid(best)}
</body></html>
"""
