"""The search page in a real browser: Debian's chromium, driven headless by Playwright, against a
`reid serve` on loopback. Upload a query photo, check the first hit is the right person, and
save a screenshot (tests/artifacts is ignored by git; look at it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from reidkit.samples import MARKET1501_MINI as MARKET_MINI

CHROMIUM = Path(os.environ.get("REIDKIT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from reidkit.inference.resolve import ModelSpec
    from reidkit.pipeline.ingest import add_images, create_gallery

    folder = tmp_path_factory.mktemp("browser") / "gallery"
    gallery, _ = create_gallery(folder, ModelSpec())
    with gallery:
        add_images(gallery, sorted((MARKET_MINI / "bounding_box_test").glob("*.jpg")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "reidkit.cli.main", "serve", str(folder), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                json.loads(r.read())
                break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_upload_a_photo_and_the_first_hit_is_that_person(server):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: `make test` installs Debian's chromium (apt-get install chromium)"
    query = MARKET_MINI / "query" / "0005_c1s1_001351_00.jpg"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(server + "/")
            page.wait_for_function("document.getElementById('stats').textContent.includes('32 items')")
            page.set_input_files("#file", str(query))
            page.wait_for_selector("#hits figure")
            first = page.locator("#hits figure").first
            page.wait_for_function("[...document.querySelectorAll('#hits img')].every(i => i.complete && i.src)")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "serve_search.png"), full_page=True)
            item = int(first.get_attribute("data-id"))
            caption = first.locator("figcaption").inner_text()
        finally:
            browser.close()
    with urllib.request.urlopen(f"{server}/v1/thumbnails/{item}") as r:
        assert r.status == 200
    # the page's first hit is the API's first hit, and that is the query's own person (0005_...)
    hits = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{server}/v1/search", data=_multipart(query), headers={"content-type": _BOUNDARY_TYPE}), timeout=30).read())
    assert hits["hits"][0]["id"] == item and caption.startswith("#1 ")
    assert hits["hits"][0]["person_id"] == 5


_BOUNDARY = "reidkit-test-boundary"
_BOUNDARY_TYPE = f"multipart/form-data; boundary={_BOUNDARY}"


def _multipart(path: Path) -> bytes:
    return (f"--{_BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{_BOUNDARY}--\r\n".encode()
