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
from contextlib import contextmanager
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


@contextmanager
def search_page(server: str, photo: Path):
    """A headless chromium page of the search page at ``server`` after picking ``photo``, hits shown."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} missing: `make test` installs Debian's chromium (apt-get install chromium)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(server + "/")
            page.wait_for_function("document.getElementById('stats').textContent.includes('32 items')")
            page.set_input_files("#file", str(photo))
            page.wait_for_selector("#hits figure")
            yield page
        finally:
            browser.close()


@pytest.mark.slow
def test_upload_a_photo_and_the_first_hit_is_that_person(server):
    query = MARKET_MINI / "query" / "0005_c1s1_001351_00.jpg"
    with search_page(server, query) as page:
        first = page.locator("#hits figure").first
        page.wait_for_function("[...document.querySelectorAll('#hits img')].every(i => i.complete && i.src)")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve_search.png"), full_page=True)
        item = int(first.get_attribute("data-id"))
        caption = first.locator("figcaption").inner_text()
    with urllib.request.urlopen(f"{server}/v1/thumbnails/{item}") as r:
        assert r.status == 200
    # the page's first hit is the API's first hit, and that is the query's own person (0005_...)
    hits = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{server}/v1/search", data=_multipart(query), headers={"content-type": _BOUNDARY_TYPE}), timeout=30).read())
    assert hits["hits"][0]["id"] == item and caption.startswith("#1 ")
    assert hits["hits"][0]["person_id"] == 5


@pytest.mark.slow
def test_drag_a_box_around_a_person_in_a_frame_and_see_the_gallery_page(server, tmp_path):
    from PIL import Image

    person = Image.open(MARKET_MINI / "query" / "0005_c1s1_001351_00.jpg").convert("RGB")
    frame = Image.new("RGB", (640, 360), (40, 110, 50))  # the person stands in a larger picture
    frame.paste(person, (400, 150))
    frame_path = tmp_path / "frame.png"
    frame.save(frame_path)
    with search_page(server, frame_path) as page:
        img = page.locator("#qimg").bounding_box()
        scale = img["width"] / frame.width  # the page may show the frame smaller than it is
        x1, y1 = img["x"] + 400 * scale, img["y"] + 150 * scale
        page.mouse.move(x1, y1)
        page.mouse.down()
        page.mouse.move(x1 + person.width * scale / 2, y1 + person.height * scale / 2)
        page.mouse.move(x1 + person.width * scale, y1 + person.height * scale)
        page.mouse.up()
        page.wait_for_function("document.getElementById('hits-title').textContent.includes('region')")
        page.wait_for_function("[...document.querySelectorAll('#hits img')].every(i => i.complete && i.src)")
        first = page.locator("#hits figure").first
        region_first = int(first.get_attribute("data-id"))
        title = page.locator("#hits-title").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "serve_region.png"), full_page=True)
        page.goto(server + "/gallery")
        page.wait_for_function("document.getElementById('cameras').rows.length > 1")
        cameras = page.locator("#cameras tr").count() - 1
        page.screenshot(path=str(ARTIFACTS / "serve_gallery.png"), full_page=True)
    stats = json.loads(urllib.request.urlopen(server + "/v1/gallery/stats", timeout=30).read())
    assert cameras == len(stats["cameras"])
    box = [int(v) for v in title.rsplit(" ", 1)[1].split(",")]
    assert box == pytest.approx([400, 150, 400 + person.width, 150 + person.height], abs=3)  # the photo's pixels
    meta = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{server}/v1/search", data=_multipart(frame_path, box=",".join(map(str, box))),
        headers={"content-type": _BOUNDARY_TYPE}), timeout=30).read())["hits"]
    assert meta[0]["id"] == region_first and meta[0]["person_id"] == 5  # the page's first hit is the API's


_BOUNDARY = "reidkit-test-boundary"
_BOUNDARY_TYPE = f"multipart/form-data; boundary={_BOUNDARY}"


def _multipart(path: Path, box: str = "") -> bytes:
    fields = f"--{_BOUNDARY}\r\nContent-Disposition: form-data; name=\"box\"\r\n\r\n{box}\r\n" if box else ""
    return fields.encode() + (f"--{_BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{_BOUNDARY}--\r\n".encode()
