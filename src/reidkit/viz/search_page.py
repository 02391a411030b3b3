"""A self-contained HTML page of one gallery search: the query image and its hits, best first."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

from PIL import Image

from ..fileio import atomic_write_text
from ..images import ImageReadError, read_image


def thumbnail_tag(path: str | Path | None, alt: str, size: tuple[int, int] = (96, 192)) -> str:
    try:
        if path is None:
            raise ImageReadError("no image")
        im = Image.fromarray(read_image(path))
        im.thumbnail(size)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
    except ImageReadError:  # missing or unreadable source: show its name only
        return f'<div class="missing">{html.escape(str(path or "no image"))}</div>'
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/jpeg;base64,{data}">'


def write_search_page(path: str | Path, query: str | Path, hits: Sequence[dict], title: str) -> Path:
    """Write ``path``: the query, then one card per hit (rank, score, camera, frame, track, id)."""
    cards = []
    for rank, hit in enumerate(hits, start=1):
        facts = [f"#{rank}", f"score {hit['score']:.3f}"]
        facts += [f"{key} {hit[key]}" for key in ("camera", "frame", "track_id", "identity_id", "person_id") if key in hit]
        facts.append(f"id {hit['id']}")
        cards.append(f'<figure>{thumbnail_tag(hit.get("source"), f"hit {rank}")}'
                     f'<figcaption>{"<br>".join(html.escape(str(f)) for f in facts)}</figcaption></figure>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.row {{ display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }}
figure {{ margin: 0; text-align: center; font-size: 12px; }}
figure.query img {{ outline: 4px solid #1f77b4; }}
img {{ display: block; margin: 0 auto 4px; }}
.missing {{ width: 96px; height: 192px; background: #eee; font-size: 10px; overflow-wrap: anywhere; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="row"><figure class="query">{thumbnail_tag(query, "query")}<figcaption>query<br>{html.escape(Path(query).name)}</figcaption></figure>
{''.join(cards) or '<p>no hits</p>'}</div>
</body></html>
"""
    return atomic_write_text(path, page)
