"""ONNX exports of torch ReID models kept on disk, so a command that runs a checkpoint in
onnxruntime starts without importing torch or exporting again (about 12 s -> 1 s on 2 cores).

An entry is named by the model's fingerprint (:meth:`~reidkit.inference.resolve.ModelSpec.record`:
the weights' and merged config's SHA-256) and the versions of reidkit and torch that exported it;
a changed file is a different entry. The folder is ``$REIDKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/reidkit``, else ``~/.cache/reidkit``; ``REIDKIT_CACHE_DIR=off`` turns it off.
A folder that cannot be written only costs the export; a damaged entry is exported anew.
"""

from __future__ import annotations

import hashlib
import logging
import os
from importlib import metadata
from pathlib import Path
from typing import Callable, Optional

from ..fileio import atomic_write

logger = logging.getLogger(__name__)
OFF = "off"


def cache_dir() -> Optional[Path]:
    """Where exports are kept, or None when caching is off."""
    chosen = os.environ.get("REIDKIT_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in (OFF, "") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "reidkit"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def entry_path(fingerprint: str) -> Optional[Path]:
    """The file an export of the model with ``fingerprint`` is kept in (None: caching off)."""
    folder = cache_dir()
    if folder is None:
        return None
    # "card 1": exports carry their model card since cards exist; older entries are not reused.
    key = hashlib.sha256(f"{fingerprint}|reidkit {_version('reidkit')}|torch {_version('torch')}|card 1".encode())
    return folder / "onnx" / f"{key.hexdigest()[:24]}.onnx"


def load_or_export(fingerprint: str, export: Callable[[], bytes], check: Callable[[bytes], object]):
    """``check(data)`` of the kept export of this model, or of ``export()`` (then kept). ``check``
    builds what the caller needs (an onnxruntime session); a kept file it rejects is replaced."""
    path = entry_path(fingerprint)
    if path is not None and path.is_file():
        try:
            return check(path.read_bytes())
        except (OSError, ValueError) as e:
            logger.warning("cached ONNX export %s is damaged (%s); exporting again", path, e)
    data = export()
    built = check(data)
    if path is not None:
        try:
            atomic_write(path, lambda f: f.write(data))
        except OSError as e:  # a read-only home or full disk: the export is only not kept
            logger.info("cannot keep the ONNX export in %s (%s)", path.parent, e)
    return built
