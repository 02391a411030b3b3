"""Association without the whole distance matrix: only the pairs closer than the threshold matter.

Average linkage merges two clusters only while their mean distance is under the threshold, and a
mean under it needs at least one member pair under it. A cannot-linked pair never ends up in one
cluster, so it may as well not be a link. Hence clusters never cross the connected components of
the graph of pairs that are closer than the threshold and not cannot-linked, and clustering each
component on its own (:func:`~.clustering.constrained_agglomerative`) gives exactly the identities
of the whole matrix. Memory is that of the close pairs and of the largest component, not N x N.

Blocking: the camera pairs and travel times of a :class:`~.associate.Topology`, and the
same-camera overlaps, remove edges before the components are formed. The close pairs come from
a range search: exact (faiss inner-product range search, queries in chunks) here; beyond one
machine, the same search on an ANN index (IVF, or Milvus on a cluster), which may miss a pair
near the threshold and then keep two pieces of one person apart, and per time window when the
tracklets of a day do not need those of the next.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .clustering import constrained_agglomerative
from .pairs import cannot_links, distances
from .tracklets import TrackletRecord

#: Queries per range-search call.
CHUNK = 4096
#: The largest block clustered as one matrix (8 bytes a pair: 20,000 tracklets, 3.2 GB).
MAX_BLOCK = 20_000
#: A calibrated threshold is lowered until the blocks are at most this large (seconds each).
FIT_BLOCK = 4000
#: The range search reaches this far past the threshold: faiss and numpy round a distance at the
#: threshold differently, and an extra edge only joins two components, which keeps the result exact.
SLACK = 1e-4


def close_pairs(feats: np.ndarray, threshold: float, chunk: int = CHUNK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every pair i < j of unit rows with cosine distance under ``threshold``
    (faiss exact range search)."""
    import faiss

    feats = np.ascontiguousarray(feats, np.float32)
    index = faiss.IndexFlatIP(feats.shape[1])
    index.add(feats)
    rows, cols, dists = [], [], []
    for start in range(0, len(feats), chunk):
        lims, sims, ids = index.range_search(feats[start:start + chunk], 1.0 - threshold)
        q = np.repeat(np.arange(start, start + len(lims) - 1), np.diff(lims).astype(np.int64))
        ids = ids.astype(np.int64)
        keep = ids > q  # each pair once, no self-pairs
        rows.append(q[keep])
        cols.append(ids[keep])
        dists.append(np.clip(1.0 - sims[keep], 0.0, 2.0))
    return np.concatenate(rows), np.concatenate(cols).astype(np.int64), np.concatenate(dists).astype(np.float64)


def linkable_edges(records: Sequence[TrackletRecord], i: np.ndarray, j: np.ndarray, topology=None) -> np.ndarray:
    """Which pairs (i, j) are not cannot-linked: not one camera at overlapping times and, with a
    topology, reachable in the time between them (the same rule as :func:`~.associate.cannot_links`)."""
    cams = np.array([r.camera for r in records])
    start = np.array([r.start for r in records], np.float64)
    end = np.array([r.end for r in records], np.float64)
    same = cams[i] == cams[j]
    ok = ~(same & (start[i] <= end[j]) & (start[j] <= end[i]))
    if topology is not None and (~same).any():
        names = sorted(set(cams.tolist()) | {c for t in topology.transitions for c in (t.source, t.target)})
        fast, slow = topology.walk_times(names)
        index = {c: k for k, c in enumerate(names)}
        code = np.array([index[c] for c in cams.tolist()], np.int64)
        first_i = (start[i] < start[j]) | ((start[i] == start[j]) & (i < j))
        a, b = np.where(first_i, i, j), np.where(first_i, j, i)
        gap = start[b] - end[a]
        walk = (gap >= fast[code[a], code[b]]) & (gap <= slow[code[a], code[b]])
        ok &= same | walk
    return ok


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Component label of each of ``n`` nodes of the undirected graph with edges (i, j)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    return connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)[1]


def fitting_threshold(n: int, i: np.ndarray, j: np.ndarray, d: np.ndarray, threshold: float, block: int) -> float:
    """The largest threshold up to ``threshold`` at which no component of the edges closer than
    it has more than ``block`` nodes (bisection over the edges' own distances)."""
    if np.bincount(components(n, i[d < threshold], j[d < threshold])).max() <= block:
        return threshold
    levels = np.unique(d[d < threshold])
    lo, hi = 0, len(levels) - 1  # levels[lo] fits (a threshold at the smallest distance keeps no edge)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        keep = d < levels[mid]
        if np.bincount(components(n, i[keep], j[keep])).max() <= block:
            lo = mid
        else:
            hi = mid - 1
    return float(levels[lo])


def associate_in_blocks(records: Sequence[TrackletRecord], threshold: float, topology=None,
                        stats: Optional[dict] = None, fit: Optional[int] = None) -> np.ndarray:
    """The labels :func:`~.associate.associate` gives at ``threshold`` (numbered by first member),
    computed per connected component of the close, linkable pairs (module docstring). With
    ``fit`` (a block size), a threshold whose blocks would be larger is first lowered until
    they fit (strangers' links percolate: above about one impostor a person, most tracklets form
    one block). ``stats`` (a dict) receives the threshold used, the number of close pairs and the
    largest block's size."""
    n = len(records)
    if n == 0:
        return np.zeros(0, np.int64)
    feats = np.stack([np.asarray(r.feature, np.float32) for r in records])
    i, j, d = close_pairs(feats, threshold + SLACK)
    keep = linkable_edges(records, i, j, topology)
    i, j, d = i[keep], j[keep], d[keep]
    if fit is not None:
        threshold = fitting_threshold(n, i, j, d, threshold + SLACK, fit) - SLACK
        keep = d < threshold + SLACK
        i, j = i[keep], j[keep]
    component = components(n, i, j)
    labels = np.empty(n, np.int64)
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.diff(component[order])) + 1
    sizes = np.bincount(component)
    if sizes.max() > MAX_BLOCK:
        raise ValueError(f"cosine threshold {threshold:.3f} joins {int(sizes.max())} of {n} tracklets into one block "
                         f"(at most {MAX_BLOCK} fit one matrix): give a lower --threshold, or a topology")
    for members in np.split(order, bounds):
        if len(members) == 1:
            labels[members] = members  # its own identity, named by its index
            continue
        part = [records[k] for k in members]
        local = constrained_agglomerative(distances(part), cannot_links(part, topology), threshold)
        for lab in np.unique(local):
            group = members[local == lab]
            labels[group] = group.min()
    if stats is not None:
        stats.update(threshold=float(threshold), close_pairs=int(len(i)), components=int(len(sizes)),
                     largest_component=int(sizes.max()))
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)  # a label is its first member
