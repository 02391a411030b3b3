"""Where gallery metadata comes from: dataset-style file names, or a CSV next to the images.

File names: Market-1501 ``0002_c1s1_000451_03.jpg`` (person 2, camera "1", frame 451), DukeMTMC
``0005_c2_f0046985.jpg`` (person 5, camera "2", frame 46985), any ``<person>_c<camera>...``, and
the best crops ``reid track`` writes, ``<camera>_<track>_<n>.jpg`` (camera "lobby_2", track 7
from ``lobby_2_00007_00003.jpg``). Cameras are names; dataset cameras keep their number as it
is written in the name. CSV: a header row with ``path`` and any of ``camera, frame, timestamp,
track_id, person_id``; relative paths are relative to the CSV file.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any, Optional

PATTERNS = (
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)s\d+_(?P<frame>\d+)_\d+"),  # Market-1501
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)_f(?P<frame>\d+)"),  # DukeMTMC-reID
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)"),
    re.compile(r"^(?P<camera>.+)_(?P<track_id>\d{5,})_\d{5,}\.[A-Za-z]+$"),  # reid track's best crops
)
EXTRA = "\0extra"  # where csv puts the fields of a row beyond the header's
CSV_FIELDS = {"camera": str, "frame": int, "timestamp": float, "track_id": int, "person_id": int}


def metadata_from_name(path: str | Path) -> dict[str, Any]:
    """Person, camera (a name) and frame or track read from a file name; {} when it has none."""
    name = Path(path).name
    for pattern in PATTERNS:
        m = pattern.match(name)
        if m:
            return {k: (v if k == "camera" else int(v)) for k, v in m.groupdict().items()}
    return {}


def read_metadata_csv(path: str | Path) -> dict[Path, dict[str, Any]]:
    """{resolved image path: metadata} from a CSV; ValueError naming the line of any bad value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metadata CSV not found: {path}")
    out: dict[Path, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); save the CSV as UTF-8") from None

    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f, restkey=EXTRA)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "path" not in header:
            raise ValueError(f"{path}: the header must name a 'path' column (and any of "
                             f"{', '.join(CSV_FIELDS)}), got {', '.join(header) or 'nothing'}")
        unknown = set(header) - {"path", *CSV_FIELDS}
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; expected path, "
                             f"{', '.join(CSV_FIELDS)}")
        for row in reader:
            line = reader.line_num
            if EXTRA in row:
                raise ValueError(f"{path}:{line}: {len(header) + len(row[EXTRA])} fields, but the header names "
                                 f"{len(header)} ({', '.join(header)}); quote values that hold commas")
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path"):
                raise ValueError(f"{path}:{line}: empty path")
            meta: dict[str, Any] = {}
            for key, kind in CSV_FIELDS.items():
                value: Optional[str] = row.get(key)
                if value:
                    try:
                        meta[key] = kind(value)
                        if kind is float and not math.isfinite(meta[key]):
                            raise ValueError(value)
                    except ValueError:
                        what = "an integer" if kind is int else "a finite number"
                        raise ValueError(f"{path}:{line}: {key} {value!r} is not {what}") from None
            image = Path(row["path"])
            out[(image if image.is_absolute() else path.parent / image).resolve()] = meta
    return out
