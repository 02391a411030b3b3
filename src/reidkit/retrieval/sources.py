"""Where gallery metadata comes from: dataset-style file names, or a CSV next to the images.

File names: Market-1501 ``0002_c1s1_000451_03.jpg`` (person 2, camera 1, frame 451), DukeMTMC
``0005_c2_f0046985.jpg`` (person 5, camera 2, frame 46985), or any ``<person>_c<camera>...``.
Cameras are kept as numbered in the name (1-based). CSV: a header row with ``path`` and any of
``camera, frame, timestamp, track_id, person_id``; relative paths are relative to the CSV file.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Optional

PATTERNS = (
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)s\d+_(?P<frame>\d+)_\d+"),  # Market-1501
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)_f(?P<frame>\d+)"),  # DukeMTMC-reID
    re.compile(r"^(?P<person_id>-?\d+)_c(?P<camera>\d+)"),
)
CSV_FIELDS = {"camera": int, "frame": int, "timestamp": float, "track_id": int, "person_id": int}


def metadata_from_name(path: str | Path) -> dict[str, Any]:
    """Person, camera and frame read from a dataset-style file name; {} when it has none."""
    name = Path(path).name
    for pattern in PATTERNS:
        m = pattern.match(name)
        if m:
            return {k: int(v) for k, v in m.groupdict().items()}
    return {}


def read_metadata_csv(path: str | Path) -> dict[Path, dict[str, Any]]:
    """{resolved image path: metadata} from a CSV; ValueError naming the line of any bad value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metadata CSV not found: {path}")
    out: dict[Path, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "path" not in header:
            raise ValueError(f"{path}: the header must name a 'path' column (and any of "
                             f"{', '.join(CSV_FIELDS)}), got {', '.join(header) or 'nothing'}")
        unknown = set(header) - {"path", *CSV_FIELDS}
        if unknown:
            raise ValueError(f"{path}: unknown column(s) {', '.join(sorted(unknown))}; expected path, "
                             f"{', '.join(CSV_FIELDS)}")
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            if not row.get("path"):
                raise ValueError(f"{path}:{line}: empty path")
            meta: dict[str, Any] = {}
            for key, kind in CSV_FIELDS.items():
                value: Optional[str] = row.get(key)
                if value:
                    try:
                        meta[key] = kind(value)
                    except ValueError:
                        raise ValueError(f"{path}:{line}: {key} {value!r} is not a{'n integer' if kind is int else ' number'}"
                                         ) from None
            image = Path(row["path"])
            out[(image if image.is_absolute() else path.parent / image).resolve()] = meta
    return out
