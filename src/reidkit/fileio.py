"""Crash-safe file writes: a temporary file in the target folder, fsync, rename, fsync the folder.

A reader sees either the old file or the complete new one, never a half-written file, even if
the process is killed mid-write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create or replace ``path`` with what ``write(file)`` writes, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; these are ordinary files
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


class OutputError(ValueError):
    """An output location that cannot be written: checked before any work is done."""


def _probe_folder(path: Path, target: Path, what: str) -> None:
    """``path`` (the target or one of its parents) must be, or become, a folder we can write in."""
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {target}: {existing} is a file, so no folder can be made there")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise OutputError(f"{what} {target}: cannot write in {existing} ({e.strerror or e})") from None


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Fail before the work, not after it: ``path`` must be a folder that exists or can be made,
    and can be written in. Nothing is created."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path} is a file, not a folder")
    _probe_folder(path, path, what)
    return path


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """As :func:`check_output_dir` for a file to (over)write: not a folder, in a writable folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder: give a file name")
    _probe_folder(path.parent, path, what)
    return path
