"""Turning command-line inputs (files, folders, glob patterns) into image lists, and feature files.

A features file (``features.npz``) holds ``names`` (the image paths), ``feats`` (N, D float32,
L2-normalised) and, when every name follows the Market-1501 convention ``<id>_c<camera>...``,
``pids`` and ``camids`` (0-based, as the dataset parsers give them).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.datasets import IMAGE_SUFFIXES, MARKET_PATTERN
from ..fileio import atomic_write

GLOB_CHARS = set("*?[")


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files named by ``inputs``, in order: files as given, folders searched recursively
    (sorted), glob patterns expanded (sorted). Duplicates are kept once. An input that names
    nothing is an error."""
    out: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise FileNotFoundError(f"no images (*{', *'.join(IMAGE_SUFFIXES)}) under folder {path}")
        elif path.is_file():
            found = [path]
        elif GLOB_CHARS & set(text):
            found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not found:
                raise FileNotFoundError(f"no files match the pattern {text}")
        else:
            raise FileNotFoundError(f"input not found: {text}")
        for p in found:
            if p not in seen:
                seen.add(p)
                out.append(p)
    return out


def parse_ids(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """(pids, 0-based camids) when every file name reads as ``<id>_c<camera>``, else None."""
    pids, cams = [], []
    for n in names:
        m = MARKET_PATTERN.match(Path(n).name)
        if m is None:
            return None
        pids.append(int(m.group(1)))
        cams.append(int(m.group(2)) - 1)
    return np.array(pids, np.int64), np.array(cams, np.int64)


def save_features(path: str | Path, names: Sequence[str], feats: np.ndarray, **extra: np.ndarray) -> Path:
    """Write a features file atomically; ``pids``/``camids`` are added when the names carry them."""
    arrays = {"names": np.array([str(n) for n in names]), "feats": np.asarray(feats, np.float32), **extra}
    ids = parse_ids(names)
    if ids is not None and len(names):
        arrays["pids"], arrays["camids"] = ids

    return atomic_write(path, lambda f: np.savez(f, **arrays))
