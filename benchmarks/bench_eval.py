#!/usr/bin/env python
"""Evaluation speed and memory at Market-1501 scale, reidkit beside fast-reid's own functions.

Each measurement runs in a fresh process that first loads the problem, so wall time and peak
memory (the process's resident high-water mark above what it held after loading) belong to the
measured call alone. With ``--fastreid PATH`` (a checkout of JDAI-CV/fast-reid; needs Cython,
``pip install -e '.[bench]'``; faiss-cpu is a dependency) fast-reid's ``evaluate_rank`` (Cython),
``compute_jaccard_distance`` (what its evaluator does for TEST.RERANK) and ``re_ranking`` (Zhong)
run on the same input, their metrics are compared with ours, and ratios are printed. Without it
the reference timings in tests/fixtures/eval/README.md are quoted instead.

    python benchmarks/bench_eval.py --problem market.npz [--fastreid ~/fast-reid]
    python benchmarks/bench_eval.py --make-problem ../shared/tools/make_market_distmat.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

IDS = ("q_pids", "g_pids", "q_camids", "g_camids")
# fast-reid on a 2-core machine like ours, from tests/fixtures/eval/README.md (midpoints).
README_REFERENCE = {"rank": (3.1, None), "rerank_fastreid": (59.0, 5.5e9), "rerank_zhong": (92.0, 12.8e9)}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


# ---- what runs in each child process -------------------------------------------------------

def _ours_rank(d, _):
    from reidkit.evaluation import evaluate_rank
    return evaluate_rank(d["distmat"], *(d[k] for k in IDS)).summary()


def _ours_rerank(d, variant):
    from reidkit.evaluation import k_reciprocal_rerank
    return k_reciprocal_rerank(d["q_feat"], d["g_feat"], k1=20, k2=6, lambda_value=0.3, variant=variant)


def _fastreid_rank_module(fastreid: str):
    """fast-reid's Cython evaluator, compiled on its own (its package __init__ needs torch/sklearn)."""
    build = Path(tempfile.gettempdir()) / "reidkit_bench_fastreid_cy"
    build.mkdir(exist_ok=True)
    so = list(build.glob("rank_cy*.so"))
    if not so:
        src = Path(fastreid) / "fastreid" / "evaluation" / "rank_cylib" / "rank_cy.pyx"
        setup = build / "setup.py"
        setup.write_text(
            "from setuptools import setup, Extension\nfrom Cython.Build import cythonize\nimport numpy\n"
            f"setup(ext_modules=cythonize([Extension('rank_cy', [{str(src)!r}], include_dirs=[numpy.get_include()])],"
            " language_level=3), script_args=['build_ext', '--inplace'])\n")
        subprocess.run([sys.executable, str(setup)], cwd=build, check=True, capture_output=True)
        so = list(build.glob("rank_cy*.so"))
    spec = importlib.util.spec_from_file_location("rank_cy", so[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fastreid_summary(cmc, all_ap, all_inp):
    return {"Rank-1": float(cmc[0]) * 100, "Rank-5": float(cmc[4]) * 100, "Rank-10": float(cmc[9]) * 100,
            "mAP": float(np.mean(all_ap)) * 100, "mINP": float(np.mean(all_inp)) * 100}


def _fastreid_rank(d, fastreid):
    mod = _fastreid_rank_module(fastreid)
    start = time.perf_counter()
    out = mod.evaluate_cy(d["distmat"], *(d[k] for k in IDS), 50, False)
    return _fastreid_summary(*out), time.perf_counter() - start


def _fastreid_rerank(d, fastreid):
    sys.path.insert(0, fastreid)
    import torch
    import torch.nn.functional as F
    from fastreid.utils.compute_dist import compute_jaccard_distance
    q = F.normalize(torch.from_numpy(d["q_feat"]), dim=1)
    g = F.normalize(torch.from_numpy(d["g_feat"]), dim=1)
    start = time.perf_counter()
    jac = compute_jaccard_distance(torch.cat([q, g]), k1=20, k2=6, search_option=3)[: len(q), len(q):]
    return jac * 0.7 + d["distmat"] * 0.3, time.perf_counter() - start


def _fastreid_zhong(d, fastreid):
    spec = importlib.util.spec_from_file_location("fastreid_rerank", Path(fastreid) / "fastreid" / "evaluation" / "rerank.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    q, g = d["q_feat"], d["g_feat"]
    start = time.perf_counter()
    q_q, g_g = 1.0 - q @ q.T, 1.0 - g @ g.T  # the distance matrices its caller must build
    return mod.re_ranking(d["distmat"], q_q, g_g, 20, 6, 0.3), time.perf_counter() - start


def _child(fn, problem, arg, queue):
    d = _load(problem)
    base = _status_bytes("VmRSS")
    start = time.perf_counter()
    out = fn(d, arg)
    wall = time.perf_counter() - start
    if isinstance(out, tuple):  # reference functions time themselves (excluding their set-up)
        out, wall = out
    peak = _status_bytes("VmHWM") - base
    if isinstance(out, np.ndarray):
        from reidkit.evaluation import evaluate_rank
        out = evaluate_rank(out, *(d[k] for k in IDS)).summary()
    queue.put((wall, peak, out))


def measure(fn, problem, arg=None):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, problem, arg, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problem", type=Path, help="npz with q_feat, g_feat, distmat and ids")
    ap.add_argument("--make-problem", type=Path, help="path to make_market_distmat.py: build the problem first")
    ap.add_argument("--fastreid", type=str, help="path to a fast-reid checkout: measure its functions too")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the rank metrics (best is kept)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["rank", "rerank_fastreid", "rerank_zhong"])
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    problem = args.problem
    if problem is None:
        if args.make_problem is None:
            ap.error("give --problem FILE.npz or --make-problem PATH/make_market_distmat.py")
        problem = Path(tempfile.gettempdir()) / "reidkit_market_problem.npz"
        if not problem.exists():
            subprocess.run([sys.executable, str(args.make_problem), "--out", str(problem), "--seed", "0"], check=True)
    with np.load(problem) as d:
        shape = d["distmat"].shape
        dim = d["q_feat"].shape[1]
    print(f"problem: {problem} ({shape[0]} queries x {shape[1]} gallery, dim {dim}), {os.cpu_count()} cpus")

    cases = {
        "rank": (_ours_rank, None, _fastreid_rank),
        "rerank_fastreid": (_ours_rerank, "fastreid", _fastreid_rerank),
        "rerank_zhong": (_ours_rerank, "zhong", _fastreid_zhong),
    }
    rows = []
    for name, (ours_fn, ours_arg, ref_fn) in cases.items():
        if name in args.skip:
            continue
        runs = [measure(ours_fn, str(problem), ours_arg) for _ in range(args.repeat if name == "rank" else 1)]
        wall, peak, metrics = min(runs, key=lambda r: r[0])
        row = {"case": name, "reidkit_s": wall, "reidkit_peak_bytes": peak, "reidkit_metrics": metrics}
        if args.fastreid:
            ref_runs = [measure(ref_fn, str(problem), args.fastreid) for _ in range(args.repeat if name == "rank" else 1)]
            ref_wall, ref_peak, ref_metrics = min(ref_runs, key=lambda r: r[0])
            row.update(reference="fast-reid (measured)", reference_s=ref_wall, reference_peak_bytes=ref_peak,
                       reference_metrics=ref_metrics,
                       max_metric_diff=max(abs(metrics[k] - ref_metrics[k]) for k in metrics))
        else:
            ref_wall, ref_peak = README_REFERENCE[name]
            row.update(reference="fast-reid (README timings)", reference_s=ref_wall, reference_peak_bytes=ref_peak)
        row["speedup"] = row["reference_s"] / wall
        row["memory_ratio"] = (peak / row["reference_peak_bytes"]) if row["reference_peak_bytes"] else None
        rows.append(row)
        mem = f", peak {peak / 1e9:.2f} GB vs {row['reference_peak_bytes'] / 1e9:.2f} GB " \
              f"({row['memory_ratio']:.2f}x)" if row["memory_ratio"] else ""
        diff = f", metrics differ by at most {row['max_metric_diff']:.4f} points" if "max_metric_diff" in row else ""
        print(f"{name:16s} reidkit {wall:7.2f} s | {row['reference']} {row['reference_s']:7.2f} s | "
              f"speed-up {row['speedup']:5.2f}x{mem}{diff}", flush=True)
        print(f"{'':16s} reidkit metrics: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
