"""Checks shared by every vector store: ids are distinct int64, vectors finite float32 of one width."""

from __future__ import annotations

import numpy as np


def as_vectors(vecs, dim: int, what: str = "vectors") -> np.ndarray:
    """``vecs`` as a C-contiguous float32 (N, dim) array; ValueError naming the first bad row."""
    arr = np.asarray(vecs)
    if arr.ndim == 1 and arr.size == dim:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what}: expected shape (N, {dim}), got {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{what}: expected real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{what}: row {row} holds NaN or infinity ({(~finite).sum()} such rows)")
    return arr


def as_ids(ids, n: int | None = None, what: str = "ids", distinct: bool = True) -> np.ndarray:
    """``ids`` as a 1-D int64 array (of length ``n`` when given; of distinct values unless told)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected a 1-D array of integers, got shape {arr.shape} dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if n is not None and len(arr) != n:
        raise ValueError(f"{what}: {len(arr)} ids for {n} vectors")
    if not distinct:
        return arr
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{what}: id {int(uniq[counts > 1][0])} appears more than once")
    return arr
