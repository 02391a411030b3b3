"""`reid serve`'s HTTP API through FastAPI's test client, on the shipped Market-1501 crops: answers
checked against the library's own calls, access rules, limits and abusive requests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from fastapi.testclient import TestClient

from reidkit.samples import MARKET1501_MINI as MARKET_MINI

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def gallery_dir(tmp_path_factory):
    from reidkit.inference.resolve import ModelSpec
    from reidkit.pipeline.ingest import add_images, create_gallery

    folder = tmp_path_factory.mktemp("serve") / "gallery"
    gallery, _ = create_gallery(folder, ModelSpec())
    with gallery:
        add_images(gallery, sorted((MARKET_MINI / "bounding_box_test").glob("*.jpg")))
    return folder


@pytest.fixture(scope="module")
def client(gallery_dir, tmp_path_factory):
    """One app for the module, on a copy of the gallery; tests that add an item remove it again."""
    import shutil

    from reidkit.serve import create_app

    folder = tmp_path_factory.mktemp("served") / "gallery"
    shutil.copytree(gallery_dir, folder)
    with TestClient(create_app(folder, api_key=KEY)) as c:
        yield c


def query_image() -> Path:
    """A query the shipped model finds its person for (score 0.85 against 0.5-0.6 for most)."""
    return MARKET_MINI / "query" / "0005_c1s1_001351_00.jpg"


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress(b"\x00" * 64)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_search_by_image_and_by_vector_answer_as_the_library_does(client, gallery_dir):
    from reidkit.pipeline.ingest import embed_query, search_image
    from reidkit.retrieval import Gallery

    query = query_image()
    with Gallery.open(gallery_dir) as g:
        expected = search_image(g, query, 5)
        vector = embed_query(g, query)[0]
    got = client.post("/v1/search", files={"image": (query.name, query.read_bytes(), "image/jpeg")},
                      data={"top_k": "5"})
    assert got.status_code == 200, got.text
    hits = got.json()["hits"]
    assert [h["id"] for h in hits] == [h.id for h in expected]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-5)
    assert hits[0]["file_name"] == Path(expected[0].source).name and "source" not in hits[0]
    assert hits[0]["thumbnail_url"] == f"/v1/thumbnails/{hits[0]['id']}"
    # the query's person is the first hit (Market names carry it)
    assert hits[0]["person_id"] == int(query.name.split("_")[0])
    by_vector = client.post("/v1/search", json={"vector": vector.tolist(), "top_k": 5}).json()["hits"]
    assert [h["id"] for h in by_vector] == [h["id"] for h in hits]
    embedded = client.post("/v1/embed", files={"image": (query.name, query.read_bytes())}).json()
    assert embedded["dim"] == len(vector)
    np.testing.assert_allclose(embedded["vector"], vector, atol=1e-5)
    camera = hits[0]["camera"]
    only = client.post("/v1/search", json={"vector": vector.tolist(), "top_k": 32, "cameras": [camera]}).json()["hits"]
    assert only and all(h["camera"] == camera for h in only)
    thumb = client.get(hits[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    from PIL import Image

    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 256


def test_the_page_is_self_contained(client):
    import re

    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page.text)  # nothing from another host
    assert "/v1/search" in page.text and "/v1/identities/" in page.text and "/v1/gallery/stats" in page.text
    assert 'form.append("box"' in page.text  # a dragged region is sent as the box
    gallery = client.get("/gallery")
    assert gallery.status_code == 200 and "/v1/gallery/stats" in gallery.text and "Items per camera" in gallery.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", gallery.text)


def test_writes_need_the_key_and_refused_requests_change_nothing(client):
    image = query_image().read_bytes()
    before = client.get("/v1/gallery/stats").json()["items"]
    files = {"images": ("new.jpg", image, "image/jpeg")}
    assert client.post("/v1/gallery/items", files=files).status_code == 401
    assert client.post("/v1/gallery/items", files=files, headers={"X-API-Key": "wrong"}).status_code == 403
    assert client.delete("/v1/gallery/items/1").status_code == 401
    assert client.delete("/v1/gallery/items/1", headers={"X-API-Key": "nope"}).status_code == 403
    assert client.get("/v1/gallery/stats").json()["items"] == before
    added = client.post("/v1/gallery/items", files=files, data={"camera": "lobby", "timestamp": "12.5"},
                        headers={"X-API-Key": KEY})
    assert added.status_code == 200, added.text
    (new,) = added.json()["ids"]
    assert client.get("/v1/gallery/stats").json()["items"] == before + 1
    hits = client.post("/v1/search", files={"image": ("q.jpg", image)}, data={"cameras": "lobby"}).json()["hits"]
    assert hits[0]["id"] == new and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert client.get(f"/v1/thumbnails/{new}").status_code == 200  # served from the gallery's own copy
    assert client.delete(f"/v1/gallery/items/{new}", headers={"X-API-Key": KEY}).status_code == 200
    assert client.delete(f"/v1/gallery/items/{new}", headers={"X-API-Key": KEY}).status_code == 404
    assert client.get("/v1/gallery/stats").json()["items"] == before


def test_abusive_requests_get_their_status_and_the_server_stays_up(client):
    key = {"X-API-Key": KEY}
    before = client.get("/v1/gallery/stats").json()["items"]
    cases = [
        (dict(files={"image": ("big.jpg", b"\xff" * (11 * 2 ** 20))}), 413),  # over the upload limit
        (dict(files={"image": ("notes.jpg", b"this is not an image")}), 422),  # a name is not a format
        (dict(files={"image": ("bomb.png", png_header(40000, 40000), "image/png")}), 422),  # decompression bomb
        (dict(files={"image": ("empty.jpg", b"")}), 422),
        (dict(content=b"raw", headers={"content-type": "text/plain"}), 415),
        (dict(json={"vector": [0.1, 0.2]}), 422),  # wrong dimension
        (dict(json={"top_k": 3}), 422),  # no vector
    ]
    for kwargs, status in cases:
        response = client.post("/v1/search", **kwargs)
        assert response.status_code == status, (kwargs.get("files"), response.text)
        assert "detail" in response.json()
    bomb = client.post("/v1/gallery/items", files={"images": ("bomb.png", png_header(40000, 40000))}, headers=key)
    assert bomb.status_code == 422 and "pixels" in bomb.json()["detail"]
    mixed = client.post("/v1/gallery/items", headers=key, files=[("images", ("a.jpg", query_image().read_bytes())),
                                                                 ("images", ("b.jpg", b"junk"))])
    assert mixed.status_code == 422  # one bad image: nothing of the request is added
    for path in ("/v1/thumbnails/..%2F..%2Fetc%2Fpasswd", "/v1/thumbnails/../../etc/passwd",
                 "/v1/thumbnails/999999", "/v1/identities/1"):
        assert client.get(path).status_code in (404, 422), path
    assert client.get("/healthz").json() == {"status": "ok", "items": before}
    assert client.get("/v1/gallery/stats").json()["items"] == before
    metrics = client.get("/metrics").text
    assert 'reidkit_requests_total{route="/v1/search",method="POST",status="413"}' in metrics
    assert f"reidkit_gallery_items {before}" in metrics


def test_identities_and_a_read_key(gallery_dir, tmp_path):
    import shutil

    from reidkit.retrieval import Gallery
    from reidkit.serve import create_app

    folder = tmp_path / "g"
    shutil.copytree(gallery_dir, folder)
    with Gallery.open(folder) as g:
        g.set_identities({1: 7, 5: 7, 9: 8})
        times = {i: g.metadata([i])[i] for i in (1, 5)}
    with TestClient(create_app(folder, api_key=KEY, read_key="reader")) as c:
        assert c.get("/v1/identities/7").status_code == 401
        assert c.get("/v1/identities/7", headers={"X-API-Key": "other"}).status_code == 403
        got = c.get("/v1/identities/7", headers={"X-API-Key": "reader"})
        assert got.status_code == 200
        body = got.json()
        assert [a["id"] for a in body["appearances"]] == sorted((1, 5), key=lambda i: (times[i]["timestamp"] or 0, i))
        assert body["cameras"] == sorted({times[i]["camera"] for i in (1, 5)})
        assert c.get("/v1/identities/7", headers={"X-API-Key": KEY}).status_code == 200  # the write key reads too
        assert c.get("/healthz").status_code == 200  # liveness stays open


def test_reid_serve_answers_over_a_real_socket_and_refuses_a_missing_gallery(gallery_dir, tmp_path):
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from typer.testing import CliRunner

    from reidkit.cli.main import app

    missing = CliRunner().invoke(app, ["serve", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no gallery in" in missing.output and len(missing.output.splitlines()) == 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "reidkit.cli.main", "serve", str(gallery_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**__import__("os").environ,
                                                                                     "REIDKIT_API_KEY": KEY})
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.loads(r.read()) == {"status": "ok", "items": 32}
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline
                time.sleep(0.2)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/gallery/items/1", method="DELETE",
                                         headers={"X-API-Key": "wrong"})
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("a wrong key deleted an item")
        except urllib.error.HTTPError as e:
            assert e.code == 403  # the key came from REIDKIT_API_KEY
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=5) as r:
            assert b"swagger" in r.read().lower()  # OpenAPI docs
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_concurrent_adds_and_searches_all_succeed_and_leave_a_consistent_gallery(client):
    from concurrent.futures import ThreadPoolExecutor

    image = query_image().read_bytes()
    before = client.get("/v1/gallery/stats").json()["items"]
    vector = client.post("/v1/embed", files={"image": ("q.jpg", image)}).json()["vector"]

    def add(k):
        r = client.post("/v1/gallery/items", files={"images": (f"a{k}.jpg", image)}, data={"camera": f"burst{k}"},
                        headers={"X-API-Key": KEY})
        return r.status_code, r.json()

    def search(_):
        r = client.post("/v1/search", json={"vector": vector, "top_k": 5})
        return r.status_code, r.json()

    with ThreadPoolExecutor(6) as pool:
        adds = [pool.submit(add, k) for k in range(6)]
        searches = [pool.submit(search, k) for k in range(24)]
        added = [f.result() for f in adds]
        found = [f.result() for f in searches]
    assert all(status == 200 for status, _ in added + found), [b for s, b in added + found if s != 200][:2]
    ids = sorted(i for _, body in added for i in body["ids"])
    assert len(set(ids)) == 6 and client.get("/v1/gallery/stats").json()["items"] == before + 6
    for _, body in found:  # every search saw a whole gallery: distinct ids, best first
        scores = [h["score"] for h in body["hits"]]
        assert scores == sorted(scores, reverse=True) and len({h["id"] for h in body["hits"]}) == len(scores)
    for i in ids:
        assert client.delete(f"/v1/gallery/items/{i}", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/v1/gallery/stats").json()["items"] == before


def test_a_region_of_a_frame_searches_as_its_crop_does(client):
    from PIL import Image

    person = Image.open(query_image()).convert("RGB")
    frame = Image.new("RGB", (400, 300), (30, 120, 40))  # the person pasted into a larger picture
    frame.paste(person, (150, 80))
    buf = io.BytesIO()
    frame.save(buf, format="PNG")
    crop_buf = io.BytesIO()
    person.save(crop_buf, format="PNG")
    box = f"150,80,{150 + person.width},{80 + person.height}"
    region = client.post("/v1/embed", files={"image": ("f.png", buf.getvalue())}, data={"box": box}).json()
    alone = client.post("/v1/embed", files={"image": ("c.png", crop_buf.getvalue())}).json()
    whole = client.post("/v1/embed", files={"image": ("f.png", buf.getvalue())}).json()
    np.testing.assert_allclose(region["vector"], alone["vector"], atol=1e-5)
    assert np.dot(whole["vector"], alone["vector"]) < 0.95  # the box mattered
    hits = client.post("/v1/search", files={"image": ("f.png", buf.getvalue())},
                       data={"box": box, "top_k": "1"}).json()["hits"]
    assert hits[0]["person_id"] == 5
    for bad in ("1,2,3", "10,10,11,11", "a,b,c,d", "500,500,600,600"):
        r = client.post("/v1/search", files={"image": ("f.png", buf.getvalue())}, data={"box": bad})
        assert r.status_code == 422 and "box" in r.json()["detail"], (bad, r.text)


def test_concurrent_image_searches_are_batched_and_answer_as_one_at_a_time(client):
    from concurrent.futures import ThreadPoolExecutor

    queries = sorted((MARKET_MINI / "query").glob("*.jpg"))[:8]

    def search(path, top_k=4):
        r = client.post("/v1/search", files={"image": (path.name, path.read_bytes())}, data={"top_k": str(top_k)})
        assert r.status_code == 200, r.text
        return [(h["id"], h["score"]) for h in r.json()["hits"]]

    alone = [search(q) for q in queries]
    service = client.app.state.service
    before = sum(n for size, n in service.model_batches.batch_sizes.items() if size > 1)
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            together = list(pool.map(search, queries * 3))
            for got, expected in zip(together, alone * 3):  # a batch's floats may differ in the last bits
                assert [i for i, _ in got] == [i for i, _ in expected]
                assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)
    batched = sum(n for size, n in service.model_batches.batch_sizes.items() if size > 1)
    assert batched > before, dict(service.model_batches.batch_sizes)  # 72 requests, 8 at a time: some shared a call
    assert 'reidkit_batches_total{stage="model",size="1"}' in client.get("/metrics").text
    r = client.post("/v1/search", json={"vector": ["a", "b"]})
    assert r.status_code == 422 and "vector" in r.json()["detail"]


def test_the_api_docs_are_served_locally(client):
    import re

    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()
    refs = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)', page.text)
    assert refs and all(r.startswith("/") for r in refs), refs  # nothing from another host
    for ref in refs:
        assert client.get(ref).status_code == 200, ref
    schema = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/embed", "/v1/gallery/items"} <= set(schema["paths"])
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page would load a CDN
