"""The CSV files of cross-camera identities: ``camera,track_id,<label column>``, one row per tracklet."""

from __future__ import annotations

import csv
from pathlib import Path


def read_labels(path: str | Path, column: str) -> dict[tuple[str, int], str]:
    """(camera, track id) -> the ``column`` value of each row; clear errors naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"identities file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"camera", "track_id", column}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}: expected columns {', '.join(sorted(need))}, got {', '.join(reader.fieldnames or [])}")
        out: dict[tuple[str, int], str] = {}
        for line, row in enumerate(reader, start=2):
            try:
                key = (row["camera"], int(row["track_id"]))
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: track_id {row['track_id']!r} is not a whole number") from None
            if key in out:
                raise ValueError(f"{path}:{line}: camera {key[0]!r} track {key[1]} is listed twice")
            out[key] = row[column]
    return out
