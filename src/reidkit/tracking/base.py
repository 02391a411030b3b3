"""The tracker seam: what every per-camera tracker does, and the registry ``reid track --tracker`` reads.

A tracker is fed one frame at a time and answers two questions:

* ``needs_appearance(detections, frame)``: which boxes of this frame need a ReID feature (the
  pipeline embeds only those; a motion-only tracker says none);
* ``update(detections, embeddings, frame)``: the tracks seen in this frame, given the frame's
  boxes and the features of the boxes it asked for (NaN rows elsewhere, or None).

``set_view(width, height)`` tells it the frame size first, where the caller knows it.

``finish()`` ends the run and returns every :class:`~reidkit.tracking.tracker.Tracklet`.
Trackers work on numpy arrays only; frames and crops stay with the caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

import numpy as np

from ..detection.base import Detections
from ..registry import Registry

TRACKERS: Registry = Registry(
    "tracker", "a BaseTracker subclass built as cls(config, camera): `needs_appearance(detections, frame)` -> "
    "bool (N,), `update(detections, embeddings, frame, camera_motion)` -> tracks seen, `finish()` -> "
    "tracklets; declares `uses_appearance`", where="`reid track --tracker`")


class BaseTracker(ABC):
    """One camera's tracker; see the module docstring for the call order."""

    #: Whether features can change what the tracker does (False: never ask for any).
    uses_appearance: bool = True

    @abstractmethod
    def needs_appearance(self, detections: Detections, frame: int,
                         camera_motion: Optional[np.ndarray] = None) -> np.ndarray:
        """A bool mask over ``detections``: the boxes whose ReID feature the next ``update`` wants."""

    @abstractmethod
    def update(self, detections: Detections, embeddings: Optional[np.ndarray], frame: int,
               camera_motion: Optional[np.ndarray] = None) -> list:
        """Advance to ``frame`` (increasing); returns the confirmed tracks seen in it, each with
        ``id``, ``box`` (xyxy), ``boxes``/``scores``/``frames`` so far."""

    def set_view(self, width: int, height: int) -> None:
        """The frame size in pixels, once known (before the first ``update``); a tracker that has no
        use for it ignores it."""

    @abstractmethod
    def finish(self) -> list:
        """End every track; all tracklets of the run, by id then start frame."""
