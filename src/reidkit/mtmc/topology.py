"""Camera topology: which camera transitions people make and how long they take (a small YAML).

numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .tracklets import TrackletRecord


@dataclass(frozen=True)
class Transition:
    """People may walk from camera ``source`` to camera ``target`` in ``min_seconds`` to ``max_seconds``."""

    source: str
    target: str
    min_seconds: float = 0.0
    max_seconds: float = float("inf")


@dataclass(frozen=True)
class Topology:
    """Which camera transitions are possible and how long they take.

    YAML: ``transitions: [{from: cam1, to: cam2, min_seconds: 5, max_seconds: 60, both_ways: true}]``.
    A person may go on through several cameras, so two tracklets of different cameras can be one
    person when the later camera is reachable from the earlier one by a walk of transitions whose
    times add up to the gap between them: at least the fastest walk's ``min_seconds`` summed, at
    most the slowest walk's ``max_seconds`` summed (no limit when the walk can go round a loop,
    e.g. a transition both ways). So an unreachable camera, or a gap faster than the fastest walk,
    rules a pair out, and a person is never split for passing through a camera in between."""

    transitions: tuple[Transition, ...]

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Topology":
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"topology file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("transitions"), list) or not data["transitions"]:
            raise ValueError(f"{path}: expected a mapping with a non-empty list `transitions`")
        unknown = set(data) - {"transitions"}
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected transitions")
        out = []
        allowed = {"from", "to", "min_seconds", "max_seconds", "both_ways"}
        for i, item in enumerate(data["transitions"]):
            where = f"{path}: transitions[{i}]"
            if not isinstance(item, dict) or not {"from", "to"} <= set(item):
                raise ValueError(f"{where}: expected a mapping with `from` and `to` camera names")
            if set(item) - allowed:
                raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(set(item) - allowed))}; "
                                 f"expected {', '.join(sorted(allowed))}")
            try:
                lo, hi = float(item.get("min_seconds", 0.0)), float(item.get("max_seconds", float("inf")))
            except (TypeError, ValueError):
                raise ValueError(f"{where}: min_seconds and max_seconds must be numbers") from None
            if not 0 <= lo <= hi:
                raise ValueError(f"{where}: need 0 <= min_seconds <= max_seconds, got {lo}, {hi}")
            source, target = str(item["from"]), str(item["to"])
            if source == target:
                raise ValueError(f"{where}: from and to are the same camera {source!r}")
            out.append(Transition(source, target, lo, hi))
            if item.get("both_ways", False):
                out.append(Transition(target, source, lo, hi))
        return cls(tuple(out))

    def check_cameras(self, cameras: Sequence[str], where: str = "topology") -> None:
        """An error naming a camera the topology mentions but no input has."""
        known = set(cameras)
        for t in self.transitions:
            for cam in (t.source, t.target):
                if cam not in known:
                    raise ValueError(f"{where}: camera {cam!r} is not among the inputs ({', '.join(sorted(known))})")

    def walk_times(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(fastest, slowest): (C, C) seconds of the quickest and the longest walk from camera
        ``names[i]`` to ``names[j]`` (inf / -inf: unreachable; slowest inf: a loop on the way)."""
        index = {c: k for k, c in enumerate(names)}
        c = len(names)
        fast, slow = np.full((c, c), np.inf), np.full((c, c), -np.inf)
        for t in self.transitions:
            i, j = index[t.source], index[t.target]
            fast[i, j] = min(fast[i, j], t.min_seconds)
            slow[i, j] = max(slow[i, j], t.max_seconds)
        step = np.isfinite(fast)
        reach = step.copy()
        for k in range(c):  # Floyd-Warshall: fastest walks and reachability
            fast = np.minimum(fast, fast[:, k:k + 1] + fast[k:k + 1, :])
            reach |= reach[:, k:k + 1] & reach[k:k + 1, :]
        looped = np.diag(reach).copy()  # cameras on a loop
        via_loop = ((reach | np.eye(c, dtype=bool)) & looped[None, :]) @ (reach | np.eye(c, dtype=bool))
        # slowest walks without loops: longest paths of a DAG, relaxed C times (C-1 edges at most)
        longest = slow.copy()
        for _ in range(c):
            with np.errstate(invalid="ignore"):
                via = longest[:, :, None] + slow[None, :, :]  # i -> k, then k -> j
            via[np.isnan(via)] = -np.inf  # inf + -inf: no walk through k
            longest = np.maximum(longest, via.max(1))
        longest = np.where(reach, longest, -np.inf)
        return fast, np.where(reach & via_loop.astype(bool), np.inf, longest)

    def allowed_pairs(self, cameras: np.ndarray, start: np.ndarray, end: np.ndarray, rows: int = 1024) -> np.ndarray:
        """(N, N) bool, :meth:`allows` for every pair at once (the earlier-starting one walks
        first), ``rows`` tracklets at a time."""
        cameras, start, end = np.asarray(cameras), np.asarray(start, np.float64), np.asarray(end, np.float64)
        names = sorted(set(cameras.tolist()) | {c for t in self.transitions for c in (t.source, t.target)})
        index = {c: k for k, c in enumerate(names)}
        cam = np.array([index[c] for c in cameras.tolist()], np.int64)
        fast, slow = self.walk_times(names)
        n = len(cam)
        out = np.zeros((n, n), bool)
        for lo_row in range(0, n, rows):
            r = slice(lo_row, min(lo_row + rows, n))
            gap_out = start[None, :] - end[r, None]  # row i walks first to column j
            walk = (gap_out >= fast[cam[r, None], cam[None, :]]) & (gap_out <= slow[cam[r, None], cam[None, :]])
            gap_in = start[r, None] - end[None, :]  # column j walks first to row i
            back = (gap_in >= fast[cam[None, :], cam[r, None]]) & (gap_in <= slow[cam[None, :], cam[r, None]])
            rank = np.arange(r.start, r.stop)[:, None]
            first = (start[r, None] < start[None, :]) | ((start[r, None] == start[None, :]) & (rank <= np.arange(n)))
            out[r] = np.where(first, walk, back)
        upper = np.triu(out, 1)
        return upper | upper.T

    def allows(self, a: TrackletRecord, b: TrackletRecord) -> bool:
        """Whether one person could be tracklet ``a`` and tracklet ``b`` (in either order in time)."""
        first, second = (a, b) if a.start <= b.start else (b, a)
        names = sorted({first.camera, second.camera} | {c for t in self.transitions for c in (t.source, t.target)})
        fast, slow = self.walk_times(names)
        i, j = names.index(first.camera), names.index(second.camera)
        gap = second.start - first.end
        return bool(fast[i, j] <= gap <= slow[i, j])
