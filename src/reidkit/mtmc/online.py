"""Online association: tracklets, as they finish, join the identity gallery's nearest identities
or start new ones.

What ``reid track --gallery`` does, so that runs over several cameras (or one camera on several
days) keep one global id per person. Finished tracklets come in batches (a run's tracklets, or
one at a time): each is searched in the gallery, and the batch is matched to the identities found
one-to-one by the Hungarian method on the distance to each identity's nearest item, so two
tracklets that want one identity do not both get it and the nearer one wins (greedy in finishing
order, a tracklet takes an identity that a later, closer one should have had, and that one then
takes the next-best: on vtest.avi's two halves, cross-camera F1 0.33 against 0.75). An identity
is ruled out for a tracklet when one of its items is in the same camera at an overlapping time,
or, with a :class:`~.associate.Topology`, when no allowed transition joins them in the time
between. A match needs a cosine distance below ``threshold``; the rest become new identities
(clustered among themselves as offline, so one new person in two pieces is one new identity).
Offline association (:func:`~.associate.associate`) sees every tracklet at once and is the better
choice when it can wait; this one decides once per batch and never revises. The gallery is
duck-typed (a :class:`reidkit.retrieval.Gallery`), so this module needs numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .associate import FALLBACK_THRESHOLD
from .clustering import constrained_agglomerative
from .pairs import cannot_links, distances
from .topology import Topology
from .tracklets import TrackletRecord

#: Nearest gallery items looked at per tracklet: enough to get past the identities it rules out.
CANDIDATES = 50
#: The Hungarian cost of a pair that may not match (above any cosine distance).
BLOCKED = 1e6


@dataclass
class Assignment:
    """What :meth:`OnlineIdentities.assign` decided for one tracklet."""

    identity_id: int
    item_id: int  # the gallery item the tracklet became
    matched: bool  # joined an existing identity (False: a new one)
    distance: Optional[float] = None  # cosine distance to the item that decided (None: no candidate)


class OnlineIdentities:
    """Give tracklets global ids against ``gallery`` as they finish (module docstring)."""

    def __init__(self, gallery, threshold: float = FALLBACK_THRESHOLD, topology: Optional[Topology] = None,
                 candidates: int = CANDIDATES):
        if not 0.0 <= threshold <= 2.0:
            raise ValueError(f"identity threshold must be a cosine distance in [0, 2], got {threshold}")
        self.gallery, self.threshold, self.topology, self.candidates = gallery, threshold, topology, candidates
        self._tracks: dict[tuple[str, int], int] = {}  # this run's (camera, track id) -> identity

    def assign(self, record: TrackletRecord, metadata: dict) -> Assignment:
        """:meth:`assign_batch` of one tracklet."""
        return self.assign_batch([record], [metadata])[0]

    def assign_batch(self, records: Sequence[TrackletRecord], metadata: Sequence[dict]) -> list[Assignment]:
        """Add ``records`` (feature, camera, span) to the gallery with ``metadata`` and the identities
        they get (module docstring). Pieces of one track (the tracker re-identified it) share the
        identity of the first."""
        known = [self._tracks.get((r.camera, r.track_id)) for r in records]
        todo = [i for i, k in enumerate(known) if k is None]
        first_piece: dict[tuple[str, int], int] = {}
        for i in todo:
            first_piece.setdefault((records[i].camera, records[i].track_id), i)
        todo = sorted(set(first_piece.values()))
        chosen, distance = self._match([records[i] for i in todo])
        decided: dict[int, tuple[Optional[int], Optional[float]]] = dict(zip(todo, zip(chosen, distance)))
        groups = self._group_unmatched([i for i, c in zip(todo, chosen) if c is None], records)
        fresh: dict[int, int] = {}
        out: list[Optional[Assignment]] = [None] * len(records)
        for i, r in enumerate(records):  # in the given order, so items are added as the tracklets finished
            key = (r.camera, r.track_id)
            if key in self._tracks:
                out[i] = self._add(r, metadata[i], self._tracks[key], True, 0.0)
                continue
            identity, d = decided[first_piece[key]]
            matched = identity is not None
            if not matched:  # a new identity, shared by the batch's other unmatched tracklets of its group
                group = groups[first_piece[key]]
                if group not in fresh:
                    fresh[group] = self.gallery.store.new_identity()
                identity = fresh[group]
            out[i] = self._add(r, metadata[i], identity, matched, d)
            self._tracks[key] = out[i].identity_id
        return out  # type: ignore[return-value]

    def _match(self, records: Sequence[TrackletRecord]) -> tuple[list[Optional[int]], list[Optional[float]]]:
        """Per record: the identity it joins (None: a new one) and the distance to that identity's
        nearest allowed item (None: no candidate)."""
        if not records or not len(self.gallery):
            return [None] * len(records), [None] * len(records)
        feats = np.stack([np.asarray(r.feature, np.float32) for r in records])
        hits = self.gallery.search(feats, min(self.candidates, len(self.gallery)))
        best: list[dict[int, float]] = []  # per record: identity -> distance of its nearest allowed item
        for r, row in zip(records, hits):
            busy = self.gallery.store.identities_seen(r.camera, r.start, r.end)
            near: dict[int, float] = {}
            for hit in row:
                if hit.identity_id is None or hit.identity_id in busy or not self._topology_allows(r, hit):
                    continue
                near.setdefault(int(hit.identity_id), 1.0 - hit.score)
            best.append(near)
        names = sorted({g for near in best for g in near})
        if not names:
            return [None] * len(records), [None] * len(records)
        from scipy.optimize import linear_sum_assignment

        column = {g: j for j, g in enumerate(names)}
        cost = np.full((len(records), len(names)), BLOCKED)
        for i, near in enumerate(best):
            for g, d in near.items():
                cost[i, column[g]] = d
        chosen: list[Optional[int]] = [None] * len(records)
        for i, j in zip(*linear_sum_assignment(cost)):
            if cost[i, j] <= self.threshold:
                chosen[i] = names[j]
        distance = [None if not near else (near[chosen[i]] if chosen[i] is not None else min(near.values()))
                    for i, near in enumerate(best)]
        return chosen, distance

    def _group_unmatched(self, rows: list[int], records: Sequence[TrackletRecord]) -> dict[int, int]:
        """Row -> group: the batch's unmatched tracklets clustered among themselves (the offline
        rule: constrained average linkage at ``threshold``), so one new person is one new identity."""
        if len(rows) < 2:
            return {i: 0 for i in rows}
        part = [records[i] for i in rows]
        labels = constrained_agglomerative(distances(part), cannot_links(part, self.topology), self.threshold)
        return dict(zip(rows, labels.tolist()))

    def _topology_allows(self, record: TrackletRecord, hit) -> bool:
        if self.topology is None or hit.camera == record.camera or hit.timestamp is None:
            return True
        end = hit.end_timestamp if hit.end_timestamp is not None else hit.timestamp
        return self.topology.allows(record, TrackletRecord(str(hit.camera), -1, hit.timestamp, end, record.feature))

    def _add(self, record: TrackletRecord, metadata: dict, identity: int, matched: bool,
             distance: Optional[float]) -> Assignment:
        meta = {**metadata, "camera": record.camera, "track_id": record.track_id, "timestamp": record.start,
                "end_timestamp": record.end, "identity_id": identity}
        (item,) = self.gallery.add(np.asarray(record.feature, np.float32)[None], [meta])
        return Assignment(identity, int(item), matched, distance)
