"""Atomic writes keep the old file when a write fails halfway and leave no temporary files."""

from __future__ import annotations

import os

import pytest

from reidkit.fileio import atomic_write


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "sub" / "features.npz"
    atomic_write(target, lambda f: f.write(b"old"))
    assert target.read_bytes() == b"old"

    def half_then_crash(f):
        f.write(b"new but incomp")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_crash)
    assert target.read_bytes() == b"old"
    assert os.listdir(target.parent) == ["features.npz"]
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
