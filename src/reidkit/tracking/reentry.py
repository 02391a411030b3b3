"""Identity memory: ended tracks kept for a while, so a person who comes back gets their old id.

One camera's tracker keeps one; cross-camera association can keep one per camera or a shared
one. Features are L2-normalised; distances are cosine distances divided by ``distance_scale``
(the model's spread relative to the shipped model's, see ``TrackerConfig.distance_scale``).
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np


class IdentityMemory:
    """``remember`` ended identities; ``recall`` the nearest one within ``max_distance`` that is
    at most ``window`` frames old and not in use, and forget it once recalled."""

    def __init__(self, window: int, max_distance: float, distance_scale: float = 1.0):
        if distance_scale <= 0:
            raise ValueError(f"distance_scale must be > 0, got {distance_scale}")
        self.window, self.max_distance, self.distance_scale = int(window), float(max_distance), float(distance_scale)
        self._entries: list[tuple[int, int, np.ndarray]] = []  # (id, last frame, unit feature)
        self.recalled = 0

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, identity: int, last_frame: int, feature: np.ndarray) -> None:
        self._entries.append((int(identity), int(last_frame), np.asarray(feature)))

    def recall(self, feature: np.ndarray, frame: int, in_use: Iterable[int] = ()) -> Optional[int]:
        """The id of the nearest remembered identity to ``feature`` (unit vector) if near enough."""
        self._entries = [e for e in self._entries if frame - e[1] <= self.window]
        if self.window <= 0:
            return None
        busy = set(in_use)
        candidates = [e for e in self._entries if e[0] not in busy]
        if not candidates:
            return None
        distance = (1.0 - np.stack([e[2] for e in candidates]) @ np.asarray(feature)) / self.distance_scale
        best = int(np.argmin(distance))
        if distance[best] > self.max_distance:
            return None
        identity = candidates[best][0]
        self._entries = [e for e in self._entries if e[0] != identity]
        self.recalled += 1
        return identity
