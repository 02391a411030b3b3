"""Load on `reid serve`: concurrent clients search a large gallery by image over loopback.

Builds a gallery of the shipped Market-1501 crops (real features) padded with random unit
vectors to ``--items`` (100k by default), starts `reid serve` on it in a subprocess, then runs
``--clients`` threads, each posting query crops to ``/v1/search`` (top 10) over one keep-alive
connection for ``--seconds``, back to back (the most the server does), then at ``--rate``
searches/s on a fixed schedule (the latency at that load). Prints searches/s, p50/p99 latency
and errors, and the same with batching off (``--max-batch 1``) back to back, as the reference.

    python benchmarks/bench_serve.py [--items 100000] [--clients 8] [--rate 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np


def build_gallery(folder: Path, items: int) -> None:
    from reidkit.inference.resolve import ModelSpec
    from reidkit.pipeline.ingest import add_images, create_gallery
    from reidkit.samples import MARKET1501_MINI

    gallery, _ = create_gallery(folder, ModelSpec())
    with gallery:
        add_images(gallery, sorted((MARKET1501_MINI / "bounding_box_test").glob("*.jpg")))
        rng = np.random.default_rng(0)
        left = items - len(gallery)
        for start in range(0, left, 20000):
            n = min(20000, left - start)
            vecs = rng.standard_normal((n, gallery.dim)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            meta = [{"camera": str(1 + (start + i) % 6), "timestamp": float(start + i)} for i in range(n)]
            gallery.add(vecs, meta, model=gallery.model)
        gallery.flush()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def multipart(path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n10\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def load(port: int, clients: int, seconds: float, bodies: list, rate: float | None = None) -> dict:
    """``clients`` threads post searches for ``seconds``: back to back (closed loop), or, with
    ``rate``, at that many per second in all on a fixed schedule (open loop; a request's latency
    counts from its scheduled time, so a server that falls behind is not hidden by the clients
    waiting for it)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    started = time.perf_counter()
    stop_at = started + seconds
    scheduled = [0]

    def next_due(n: int) -> float | None:
        if rate is None:
            return time.perf_counter() if time.perf_counter() < stop_at else None
        with lock:
            i = scheduled[0]
            scheduled[0] += 1
        due = started + i / rate
        if due >= stop_at:
            return None
        time.sleep(max(0.0, due - time.perf_counter()))
        return due

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = k
        while (due := next_due(n)) is not None:
            body, kind = bodies[n % len(bodies)]
            n += clients
            try:
                conn.request("POST", "/v1/search", body, {"Content-Type": kind})
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with lock:
                latencies.append(time.perf_counter() - due) if ok else None
                errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"searches_per_s": len(lat) / wall, "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan"), "done": len(lat), "errors": errors[0]}


def serve(folder: Path, port: int, max_batch: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "reidkit.cli.main", "serve", str(folder), "--port", str(port),
                             "--max-batch", str(max_batch)], stdout=subprocess.DEVNULL)
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
    raise SystemExit("the server did not answer /healthz within 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=50.0, help="searches/s offered in the open-loop run")
    ap.add_argument("--open-clients", type=int, default=16, help="client threads of the open-loop run")
    ap.add_argument("--gallery", type=Path, help="reuse (or build once into) this folder")
    args = ap.parse_args()

    from reidkit.samples import MARKET1501_MINI

    tmp = tempfile.TemporaryDirectory()
    folder = args.gallery or Path(tmp.name) / "gallery"
    if not folder.exists():
        t = time.perf_counter()
        build_gallery(folder, args.items)
        print(f"built a {args.items}-item gallery in {time.perf_counter() - t:.0f} s")
    bodies = [multipart(p) for p in sorted((MARKET1501_MINI / "query").glob("*.jpg"))]
    print(f"image searches (top 10), {args.seconds:.0f} s each run, {os.cpu_count()} cores, clients on the same cores")
    print(f"{'server':<20}{'load':<28}{'searches/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    loads = [(f"{args.clients} clients, closed loop", args.clients, None),
             (f"{args.rate:g}/s offered, open loop", args.open_clients, args.rate)]
    results = {}
    for name, max_batch in (("batched (default)", 16), ("one at a time", 1)):
        port = free_port()
        proc = serve(folder, port, max_batch)
        try:
            load(port, args.clients, 2.0, bodies)  # warm-up: sessions, caches, index in memory
            for label, clients, rate in loads:
                r = results[name, label] = load(port, clients, args.seconds, bodies, rate)
                print(f"{name:<20}{label:<28}{r['searches_per_s']:>11.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                      f"{r['errors']:>8}")
        finally:
            proc.terminate()
            proc.wait(30)
    closed = loads[0][0]
    ratio = results["batched (default)", closed]["searches_per_s"] / \
        max(results["one at a time", closed]["searches_per_s"], 1e-9)
    print(f"batching: {ratio:.2f}x the closed-loop throughput")
    most = results["batched (default)", closed]
    offered = results["batched (default)", loads[1][0]]
    verdict = most["searches_per_s"] >= 50 and offered["p99_ms"] < 200 and most["errors"] + offered["errors"] == 0
    print(f"target (>= 50 searches/s; p99 < 200 ms at {args.rate:g}/s; no errors): {'met' if verdict else 'NOT met'}")

if __name__ == "__main__":
    main()
