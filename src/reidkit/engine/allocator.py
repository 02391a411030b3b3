"""Keep freed activation buffers in the process instead of handing them back to the OS.

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and
unmaps it on free, so a CPU training step that allocates gigabytes of activations page-faults and
zero-fills all of them again each iteration. Measured on a 2-core machine at batch 64:
bagtricks_R50 3.8 -> 4.4 images/s and Lite0 12.1 -> 17.5 images/s, kernel time 38 s -> 8 s,
at the cost of a higher resident peak (the heap keeps its high-water mark).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to reuse large freed blocks (no mmap per allocation, no trimming).

    Returns whether the setting took effect (False on non-glibc systems, where nothing changes).
    Loader worker processes forked afterwards inherit it.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1
    if not ok:
        logger.debug("mallopt refused the allocator settings; keeping glibc's defaults")
    return ok
