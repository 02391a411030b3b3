"""Small real sample data shipped with the package, so the demo runs offline on a fresh install."""

from __future__ import annotations

from pathlib import Path

MARKET1501_MINI = Path(__file__).resolve().parent / "market1501-mini"
