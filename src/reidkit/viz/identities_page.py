"""A self-contained HTML page of cross-camera identities: one row per identity, its appearances
(best crop, camera, time span, track id) in time order. Crops are embedded, nothing is fetched."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

from ..fileio import atomic_write_text
from .search_page import thumbnail_tag


def write_identities_page(path: str | Path, identities: Sequence[dict], title: str) -> Path:
    """Write ``path`` from ``identities`` as ``run_mtmc`` lists them; identities seen in the most
    cameras first, then by first appearance."""
    ordered = sorted(identities, key=lambda i: (-len(i["cameras"]), i["first"], i["global_id"]))
    rows = []
    for ident in ordered:
        cards = []
        for a in ident["appearances"]:
            facts = [a["camera"], f"{a['start']:.1f}-{a['end']:.1f} s", f"track {a['track_id']}"]
            cards.append(f'<figure>{thumbnail_tag(a.get("crop"), a["camera"])}'
                         f'<figcaption>{"<br>".join(html.escape(str(f)) for f in facts)}</figcaption></figure>')
        head = (f'<h2>identity {ident["global_id"]}: {len(ident["appearances"])} tracklets in '
                f'{html.escape(", ".join(ident["cameras"]))}</h2>')
        rows.append(f'<section>{head}<div class="row">{"".join(cards)}</div></section>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
section {{ border-top: 1px solid #ccc; padding: 0.5em 0; }}
h2 {{ font-size: 15px; margin: 0.3em 0; }}
.row {{ display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }}
figure {{ margin: 0; text-align: center; font-size: 12px; }}
img {{ display: block; margin: 0 auto 4px; }}
.missing {{ width: 96px; height: 192px; background: #eee; font-size: 10px; overflow-wrap: anywhere; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{''.join(rows) or '<p>no identities</p>'}
</body></html>
"""
    return atomic_write_text(path, page)
