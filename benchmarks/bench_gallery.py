#!/usr/bin/env python
"""Vector search at gallery scale: faiss indexes beside a plain numpy search, and gallery adds.

For each dimension: N unit vectors and 200 queries, either ``random`` (uniform on the sphere: the
worst case, no structure for an approximate index to use; a query's true neighbours are barely
nearer than the rest) or ``reid`` (what ReID features look like: 20 views per person on average,
each at cosine ~0.8 to its person's random centre; queries are new views of gallery people). Each case reports build time, resident
memory it added, single-query latency (median of 200 one-row searches), the time for one batch
of 100, and recall@10 against the exact answer. The exact answer and the numpy reference
(``queries @ matrix.T`` + argpartition) run in the same process on the same arrays.

Then ``Gallery.add`` of 100k vectors (dim 512, metadata included) into a gallery on disk, in
batches of 10k (one SQLite transaction each), with the index file written at the end.

    python benchmarks/bench_gallery.py [--n 1000000] [--dims 512 2048] [--kinds flat hnsw ivfpq]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e9


def random_unit(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), dim), dtype=np.float32)
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def reid_like(n: int, dim: int, seed: int, people: int, chunk: int = 100_000) -> np.ndarray:
    centres = random_unit(people, dim, seed=12345)
    out = np.empty((n, dim), np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        block = centres[rng.integers(0, people, m)] + 0.75 / np.sqrt(dim) * rng.standard_normal((m, dim), dtype=np.float32)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def numpy_search(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = queries @ matrix.T
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, 1), axis=1)
    return np.take_along_axis(top, order, 1)


def timed(fn, repeat: int = 1) -> float:
    best = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best.append(time.perf_counter() - start)
    return float(np.median(best))


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def single_latency_ms(search, queries: np.ndarray, n: int = 200, budget_s: float = 15.0) -> float:
    """Median latency of one-row searches: ``n`` of them, or as many as fit in ``budget_s`` (>= 10)."""
    times = []
    for i in range(n):
        if i >= 10 and sum(times) > budget_s:
            break
        q = queries[i % len(queries)][None]
        start = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def rescored(index, data: np.ndarray, queries: np.ndarray, k: int, refine: int = 10) -> np.ndarray:
    """What ``Gallery.search`` does with IVF-PQ: ``refine`` x k candidates by code, re-scored with
    the stored float vectors (here from memory; the gallery reads them from SQLite)."""
    _, candidates = index.search(queries, refine * k)
    out = np.full((len(queries), k), -1, np.int64)
    for row, found in enumerate(candidates):
        found = found[found >= 0]
        exact = data[found] @ queries[row]
        out[row, :min(k, len(found))] = found[np.argsort(-exact)[:k]]
    return out


def bench_dim(n: int, dim: int, kinds: list[str], ef_values: list[int], nprobe_values: list[int], kind: str,
              hnsw_params: dict[str, int], refines: list[int]) -> None:
    from reidkit.retrieval import build_index

    base = rss_gb()
    t0 = time.perf_counter()
    if kind == "random":
        data, queries = random_unit(n, dim, seed=dim), random_unit(200, dim, seed=dim + 1)
    else:
        data, queries = reid_like(n, dim, dim, max(1, n // 20)), reid_like(200, dim, dim + 1, max(1, n // 20))
    ids = np.arange(n, dtype=np.int64)
    print(f"\n## {n:,} {kind} unit vectors, dim {dim} ({data.nbytes / 1e9:.1f} GB as float32, made in "
          f"{time.perf_counter() - t0:.0f} s)\n", flush=True)
    print("| index | build s | memory GB | single query ms | batch of 100 ms | recall@10 |")
    print("|---|---|---|---|---|---|", flush=True)
    truth = numpy_search(data, queries[:100], 10)
    single = single_latency_ms(lambda q: numpy_search(data, q, 10), queries)
    batch = timed(lambda: numpy_search(data, queries[:100], 10), 3)
    print(f"| numpy matrix product (reference) | 0 | {data.nbytes / 1e9:.2f} | {single:.1f} | {1000 * batch:.0f} | 1.000 |",
          flush=True)
    for index_kind in kinds:
        gc.collect()
        before = rss_gb()
        start = time.perf_counter()
        index = build_index(dim, ids, data, kind=index_kind, **(hnsw_params if index_kind == "hnsw" else {}))
        build = time.perf_counter() - start
        memory = rss_gb() - before
        settings = [("", None)]
        if index_kind == "hnsw":
            settings = [(f"ef_search {ef}", ("ef_search", ef)) for ef in ef_values]
        elif index_kind == "ivfpq":
            settings = [(f"nprobe {p}", ("nprobe", p)) for p in nprobe_values]
        for label, setting in settings:
            if setting is not None:
                index.params[setting[0]] = setting[1]
            found = index.search(queries[:100], 10)[1]
            single = single_latency_ms(lambda q: index.search(q, 10), queries)
            batch = timed(lambda: index.search(queries[:100], 10), 3)
            params = getattr(index, "params", {})
            extra = ", ".join(f"{k} {v}" for k, v in params.items() if k not in ("ef_search", "nprobe"))
            name = f"{index.engine} {index_kind}" + (f" ({extra})" if extra else "") + (f", {label}" if label else "")
            print(f"| {name} | {build:.0f} | {memory:.2f} | {single:.2f} | {1000 * batch:.1f} | "
                  f"{recall_at(found, truth):.3f} |", flush=True)
            for refine in refines if index_kind == "ivfpq" else []:
                found = rescored(index, data, queries[:100], 10, refine)
                single = single_latency_ms(lambda q: rescored(index, data, q, 10, refine), queries)
                batch = timed(lambda: rescored(index, data, queries[:100], 10, refine), 3)
                print(f"| {name}, top {10 * refine} re-scored exactly | {build:.0f} | {memory:.2f} | "
                      f"{single:.2f} | {1000 * batch:.1f} | {recall_at(found, truth):.3f} |", flush=True)
        index = None
    data = None
    gc.collect()
    print(f"(process memory above start: {rss_gb() - base:.2f} GB after freeing)", flush=True)


def bench_gallery_add(n: int, dim: int, batch: int, folder: Path) -> None:
    from reidkit.retrieval import Gallery

    data = random_unit(n, dim, seed=7)
    metas = [{"camera": i % 6 + 1, "frame": i, "timestamp": i / 25.0, "source": f"cam{i % 6 + 1}/{i:08d}.jpg",
              "track_id": i // 50} for i in range(n)]
    shutil.rmtree(folder, ignore_errors=True)
    gallery = Gallery.create(folder, "bench", dim)
    start = time.perf_counter()
    for s in range(0, n, batch):
        gallery.add(data[s:s + batch], metas[s:s + batch])
    added = time.perf_counter() - start
    gallery.close()
    total = time.perf_counter() - start
    start = time.perf_counter()
    reopened = Gallery.open(folder)
    hit = reopened.search(data[123], 1)[0][0]
    opened = time.perf_counter() - start
    size = sum(p.stat().st_size for p in folder.iterdir()) / 1e9
    print(f"\n## Gallery.add: {n:,} vectors of dim {dim} with metadata, batches of {batch:,}, on disk\n")
    print(f"- {n / added:,.0f} vectors/s while adding ({added:.1f} s); {n / total:,.0f} vectors/s including "
          f"writing the {reopened.index.describe()['kind']} index file ({total:.1f} s)")
    print(f"- reopen + first search {opened:.2f} s (nearest to item 124: id {hit.id}); {size:.2f} GB on disk")
    reopened.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, nargs="*", default=[512, 2048])
    ap.add_argument("--kinds", nargs="*", default=["flat", "hnsw", "ivfpq"])
    ap.add_argument("--data", nargs="*", default=["reid", "random"], choices=["reid", "random"])
    ap.add_argument("--ef", type=int, nargs="*", default=[64, 128, 256])
    ap.add_argument("--nprobe", type=int, nargs="*", default=[16, 64])
    ap.add_argument("--refine", type=int, nargs="*", default=[10],
                    help="IVF-PQ: also re-score REFINE x 10 candidates exactly (the gallery uses 10).")
    ap.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per node (reidkit's default 32).")
    ap.add_argument("--ef-construction", type=int, default=128, help="HNSW build breadth (default 128).")
    ap.add_argument("--add-n", type=int, default=100_000)
    ap.add_argument("--add-batch", type=int, default=10_000)
    ap.add_argument("--skip-search", action="store_true")
    args = ap.parse_args()
    import faiss

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    if args.add_n:
        with tempfile.TemporaryDirectory() as tmp:
            bench_gallery_add(args.add_n, 512, args.add_batch, Path(tmp) / "gallery")
    if not args.skip_search:
        for dim in args.dims:
            for kind in args.data:
                bench_dim(args.n, dim, args.kinds, args.ef, args.nprobe, kind,
                          {"M": args.hnsw_m, "ef_construction": args.ef_construction}, args.refine)


if __name__ == "__main__":
    main()
