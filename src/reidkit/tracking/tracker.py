"""Per-camera multi-object tracker: Kalman motion, appearance memory, two-stage assignment, re-entry.

Each frame (``Tracker.update``):

1. every track's box is predicted one frame ahead (constant velocity, :mod:`.kalman`);
2. confirmed and lost tracks are matched to confident detections (score >= ``high_score``) by
   the smaller of the box distance (1 - IoU) and the appearance distance (cosine distance of the
   detection's ReID feature to the track's moving-average feature); appearance only counts near
   the prediction (IoU distance <= ``proximity``) for tracks seen last frame, and within the
   Kalman gate (Mahalanobis, 95%) for tracks lost for longer. Without features the box distance
   is 1 - IoU x score, as ByteTrack weighs it: a faint box must overlap more;
3. the confirmed tracks left over are matched to weak detections (``low_score`` <= score <
   ``high_score``) by IoU alone (ByteTrack's second association: occluded people score low);
4. tentative tracks are matched to the confident detections left over;
5. unmatched detections of at least ``new_track_score`` start tentative tracks, confirmed after
   ``n_init`` hits (immediately in the first frame). A track confirmed while a lost one (missed,
   not yet ended, last seen before it began) looks like it within ``appearance_distance``
   continues that one, id and history: someone who came out from behind others away from where
   the Kalman filter expected them (on PETS09 frames 1-400, HOTA 61.5 -> 62.9, ID switches
   10 -> 6). Tentative tracks missing a frame are
   dropped; confirmed tracks missing more than ``max_age`` frames end and become
   :class:`Tracklet` s; so does a track that left the view (below).

Output boxes are the detection averaged with the Kalman estimate (``box_smoothing``), and a
tracklet's gaps of up to ``fill_gaps`` frames (a missed detection, an occlusion) are filled by
linear interpolation when it ends (marked in ``Tracklet.observed``).

Scores: the defaults suit detectors whose scores are probabilities (YOLOX, SSDLite, YOLO), where
a new track needs 0.65: above what static look-alikes get (a sign in PETS09 scores 0.52).
Public detection files (MOTChallenge ``det.txt``) carry other scores, rescaled min-max to
[0, 1]: :meth:`TrackerConfig.for_scores` lets tracks start from 0.3 there.

Leaving the view: with the frame size known (:meth:`Tracker.set_view`), a track whose last box
touches the frame's edge (within ``exit_border`` of its width or height), whose motion points
out through that edge, and that has been missed for ``exit_patience`` frames has left: it ends at
once, and someone who comes in there later starts a new track. That is how MOTChallenge ground
truth counts (in PETS09-S2L1 frames 1-400, both people who walk out and back in get new ids, the
two hidden behind others for 70-100 frames keep theirs), and it keeps a newcomer at the edge
where someone just left from taking that person's id by appearance alone. Linking a person
across exits is the job of ``--gallery`` and ``reid mtmc``.

Re-entry: a person hidden inside the view longer than ``max_age`` would come back with a new id.
Tracks that end without leaving the view stay in an identity memory
(:class:`~.reentry.IdentityMemory`) for ``reentry_window`` frames; when a new track is confirmed,
its feature is compared with the memory and, if the nearest ended track is within
``reentry_distance`` (cosine), the new track takes that id. ``reentries`` counts them.

Which boxes need a feature (:meth:`Tracker.needs_appearance`): with ``appearance_refresh`` 1,
every confident box; above 1, only boxes whose feature could change a match, or whose track's
feature is that many frames old.

Without features (``embeddings=None``) the tracker is motion-only (IoU and Kalman). With a moving
camera, pass each frame's camera motion (:mod:`.camera_motion`): tracks are moved by it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..detection.base import Detections
from ..evaluation.distance import l2_normalize
from .base import TRACKERS, BaseTracker
from .camera_motion import warp_states
from .kalman import GATE_4DOF, KalmanBoxFilter, xyah_to_xyxy, xyxy_to_xyah
from .matching import assign, cosine_distance, iou_matrix
from .reentry import IdentityMemory

TENTATIVE, CONFIRMED = "tentative", "confirmed"


@dataclass
class TrackerConfig:
    """Thresholds and windows; measured choices in the README's tracking section."""

    high_score: float = 0.3
    low_score: float = 0.1
    new_track_score: float = 0.65
    n_init: int = 2
    max_age: int = 30
    match_distance: float = 0.8  # stage 2/4 and the fused cost: at least 0.2 IoU, or appearance
    low_match_distance: float = 0.5  # stage 3: weak boxes need IoU >= 0.5
    appearance_distance: float = 0.25  # cosine distance under which appearance may match
    # Appearance counts only where IoU >= 0.2 (tracks seen last frame): on PETS09 frames 1-400
    # with SSDLite, 0.2 gave HOTA 35.5 / IDF1 53.4 / 50 ID switches, 0.5 gave 32.1 / 47.6 / 72.
    proximity: float = 0.8
    feature_momentum: float = 0.8
    reentry_window: int = 600
    reentry_distance: float = 0.1
    box_smoothing: float = 0.5  # weight of the Kalman estimate in each output box
    fill_gaps: int = 10  # frames of a gap inside a tracklet filled by interpolation (0: none)
    crowded_overlap: float = 0.3  # a box overlapping another this much (IoU) holds two people: no feature update
    # Cosine distances are divided by this before any threshold or cost sees them: the thresholds
    # above are in units of the shipped model's distances, and a model whose distances are spread
    # wider (a fine-tuned one records its scale in its checkpoint, see `reid adapt`) says so here.
    distance_scale: float = 1.0
    appearance_refresh: int = 1  # frames after which a plainly continuing track's feature is renewed
    # A track that left the view ends (see the module docstring): its box within this fraction of
    # the frame's size from an edge, moving out through it, missed this many frames. On PETS09
    # frames 1-400 (shipped model): HOTA 59.2 -> 61.5, IDF1 79.5 -> 86.3; the same for borders of
    # 0.005-0.02 and a patience of 1-6 frames. 0: off.
    exit_border: float = 0.01
    exit_patience: int = 3

    @classmethod
    def for_scores(cls, probabilities: bool, **overrides) -> "TrackerConfig":
        """The defaults for detectors whose scores are probabilities; for scores that are not (a
        MOTChallenge ``det.txt`` of scores outside [0, 1], rescaled min-max by ``MOTDetections``),
        tracks start from 0.3."""
        return cls(**({} if probabilities else {"new_track_score": 0.3}), **overrides)

    def __post_init__(self) -> None:
        if not 0 <= self.low_score <= self.high_score:
            raise ValueError(f"need 0 <= low_score <= high_score, got {self.low_score}, {self.high_score}")
        if not self.distance_scale > 0:
            raise ValueError(f"need distance_scale > 0, got {self.distance_scale}")
        if not 0 <= self.box_smoothing <= 1 or self.fill_gaps < 0:
            raise ValueError(f"need box_smoothing in [0, 1] and fill_gaps >= 0, got {self.box_smoothing}, "
                             f"{self.fill_gaps}")
        if self.n_init < 1 or self.max_age < 1 or self.appearance_refresh < 1 or self.exit_patience < 1:
            raise ValueError(f"n_init, max_age, appearance_refresh and exit_patience must be >= 1, got {self.n_init}, "
                             f"{self.max_age}, {self.appearance_refresh}, {self.exit_patience}")
        if not 0 <= self.exit_border < 0.5:
            raise ValueError(f"need 0 <= exit_border < 0.5, got {self.exit_border}")


@dataclass(eq=False)  # tracks are compared by identity
class Track:
    """A person followed through frames. ``id`` is 0 until the track is confirmed."""

    id: int
    mean: np.ndarray
    cov: np.ndarray
    state: str = TENTATIVE
    hits: int = 1
    time_since_update: int = 0
    feature: Optional[np.ndarray] = None
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    feature_at: list[int] = field(default_factory=list)  # which observation each feature belongs to
    last_embedded: int = -(10 ** 9)  # frame of the last appearance update

    @property
    def box(self) -> np.ndarray:
        """The filtered box now, xyxy."""
        return xyah_to_xyxy(self.mean[:4])[0]


@dataclass(eq=False)
class Tracklet:
    """A finished track: everything a later stage (gallery, cross-camera association) needs."""

    camera: str
    track_id: int
    frames: np.ndarray  # (N,) frame numbers where a detection was matched
    boxes: np.ndarray  # (N, 4) xyxy detection boxes
    scores: np.ndarray  # (N,)
    features: Optional[np.ndarray]  # (N, D) per-frame features (NaN rows: not embedded), or None
    crop: Optional[np.ndarray] = None  # RGB crop of the best-scoring observation, when kept
    observed: Optional[np.ndarray] = None  # (N,) False for frames filled by interpolation; None: all observed

    def filled(self, max_gap: int) -> "Tracklet":
        """This tracklet with its gaps of at most ``max_gap`` frames filled by linear interpolation
        of the boxes on either side (score: the lower of the two; no feature)."""
        steps = np.diff(self.frames)
        fill = np.flatnonzero((steps > 1) & (steps <= max_gap))
        if not len(fill):
            return self
        frames, boxes, scores, observed = [self.frames[:1]], [self.boxes[:1]], [self.scores[:1]], [np.ones(1, bool)]
        feats = [self.features[:1]] if self.features is not None else None
        gaps = set(fill.tolist())
        for i in range(1, len(self.frames)):
            if i - 1 in gaps:
                missing = np.arange(self.frames[i - 1] + 1, self.frames[i])
                w = ((missing - self.frames[i - 1]) / steps[i - 1])[:, None]
                frames.append(missing)
                boxes.append(((1 - w) * self.boxes[i - 1] + w * self.boxes[i]).astype(np.float32))
                scores.append(np.full(len(missing), min(self.scores[i - 1], self.scores[i]), np.float32))
                observed.append(np.zeros(len(missing), bool))
                if feats is not None:
                    feats.append(np.full((len(missing), self.features.shape[1]), np.nan, np.float32))
            frames.append(self.frames[i:i + 1])
            boxes.append(self.boxes[i:i + 1])
            scores.append(self.scores[i:i + 1])
            observed.append(np.ones(1, bool) if self.observed is None else self.observed[i:i + 1])
            if feats is not None:
                feats.append(self.features[i:i + 1])
        return Tracklet(self.camera, self.track_id, np.concatenate(frames), np.concatenate(boxes),
                        np.concatenate(scores), np.concatenate(feats) if feats is not None else None, self.crop,
                        np.concatenate(observed))

    @property
    def mean_feature(self) -> Optional[np.ndarray]:
        """The normalised mean of the observations that have a feature."""
        if self.features is None:
            return None
        have = np.isfinite(self.features).all(1)
        if not have.any():
            return None
        return l2_normalize(self.features[have].mean(0))


@TRACKERS.register("reidkit")
class Tracker(BaseTracker):
    """``needs_appearance`` and ``update(detections, embeddings, frame)`` once per frame;
    ``finish()`` at the end (see :mod:`.base`)."""

    def __init__(self, config: Optional[TrackerConfig] = None, camera: str = "0"):
        self.cfg, self.camera = config or TrackerConfig(), camera
        self.kf = KalmanBoxFilter()
        self.tracks: list[Track] = []
        self.finished: list[Tracklet] = []
        self._next_id = 1
        self.memory = IdentityMemory(self.cfg.reentry_window, self.cfg.reentry_distance, self.cfg.distance_scale)
        self._frame: Optional[int] = None
        self._first_frame = True
        self._scores = np.zeros(0)  # this frame's detection scores
        self._view: Optional[tuple[int, int]] = None  # frame (width, height), when known

    def set_view(self, width: int, height: int) -> None:
        """The frame size: tracks that leave through its edges end (``exit_border``)."""
        if width < 1 or height < 1:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        self._view = (int(width), int(height))

    # -- one frame ----------------------------------------------------------------------------
    @property
    def reentries(self) -> int:
        """How many new tracks took the id of an ended one."""
        return self.memory.recalled

    def update(self, detections: Detections, embeddings: Optional[np.ndarray], frame: int,
               camera_motion: Optional[np.ndarray] = None) -> list[Track]:
        """Advance to ``frame`` with its detections; returns the confirmed tracks seen in it.
        ``camera_motion``: the 2x3 transform from the previous frame's pixels to this one's
        (:class:`~reidkit.tracking.camera_motion.CameraMotion`); tracks move with it first."""
        cfg = self.cfg
        boxes = np.asarray(detections.xyxy, np.float64)
        scores = np.asarray(detections.score, np.float64)
        feats = None
        if embeddings is not None:
            feats = np.asarray(embeddings, np.float64)
            if feats.ndim != 2 or len(feats) != len(boxes):
                raise ValueError(f"expected ({len(boxes)}, D) embeddings, got shape {feats.shape}")
            feats = l2_normalize(feats, dtype=None)  # rows of NaN (boxes left unembedded) stay NaN: no appearance
        if self._frame is not None and frame <= self._frame:
            raise ValueError(f"frames must increase: got {frame} after {self._frame}")
        steps = 1 if self._frame is None else frame - self._frame
        self._frame = frame
        warp = None if camera_motion is None else np.asarray(camera_motion, np.float64)
        if warp is not None and warp.shape != (2, 3):
            raise ValueError(f"camera_motion must be a 2x3 transform, got shape {warp.shape}")
        if self.tracks:
            mean, cov = self._states_after(steps, warp)
            for t, m, c in zip(self.tracks, mean, cov):
                t.mean, t.cov = m, c
                t.time_since_update += steps

        self._scores = np.asarray(scores, np.float64)
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        confirmed = [t for t in self.tracks if t.state == CONFIRMED]
        tentative = [t for t in self.tracks if t.state == TENTATIVE]

        matches, left_tracks, left_high = self._match(confirmed, high, boxes, feats, fused=True)
        recent = [t for t in left_tracks if t.time_since_update <= steps]
        m2, _, _ = self._match(recent, low, boxes, None, fused=False, max_cost=cfg.low_match_distance)
        m3, unconfirmed_left, left_high = self._match(tentative, left_high, boxes, feats, fused=True)
        pairs = matches + m2 + m3
        if pairs:  # one batched Kalman correction for every matched track
            dets = np.array([det for _, det in pairs])
            mean, cov = self.kf.update(np.stack([t.mean for t, _ in pairs]), np.stack([t.cov for t, _ in pairs]),
                                       xyxy_to_xyah(boxes[dets]))
            crowded = np.zeros(len(boxes), bool)
            if feats is not None and len(boxes) > 1 and cfg.crowded_overlap < 1.0:
                overlap = iou_matrix(boxes, boxes)
                np.fill_diagonal(overlap, 0.0)
                crowded = overlap.max(1) >= cfg.crowded_overlap
            for (track, det), m, c in zip(pairs, mean, cov):
                track.mean, track.cov = m, c
                feat = None if feats is None or crowded[det] else feats[det]
                self._record(track, boxes[det], scores[det], feat, frame)
        for track in unconfirmed_left:
            self.tracks.remove(track)
        for det in left_high:
            if scores[det] >= cfg.new_track_score:
                self._start_track(boxes[det], scores[det], None if feats is None else feats[det], frame)
        for track in [t for t in self.tracks if t.state == CONFIRMED and t.time_since_update > cfg.max_age]:
            self._end(track)
        for track in [t for t in self.tracks if t.state == CONFIRMED and t.time_since_update >= cfg.exit_patience]:
            if self._left_view(track):
                self._end(track, remember=False)
        self._first_frame = False
        return [t for t in self.tracks if t.state == CONFIRMED and t.time_since_update == 0]

    def needs_appearance(self, detections: Detections, frame: int,
                         camera_motion: Optional[np.ndarray] = None) -> np.ndarray:
        """Which detections of ``frame`` need a ReID feature: those whose feature could change the
        next :meth:`update`, or is due. ``appearance_refresh`` 1: every confident box.

        Appearance can only lower a match cost, so it matters where a box has two or more tracks
        that could take it (tracks seen last frame near their prediction, lost tracks with a
        feature within their Kalman gate), a lost track among them, or none and a score that
        starts a track (its first feature, for re-entry). A box with one candidate is matched by
        overlap anyway; it is embedded only when that track's feature is missing or at least
        ``appearance_refresh`` frames old."""
        cfg = self.cfg
        refresh = cfg.appearance_refresh
        boxes = np.asarray(detections.xyxy, np.float64)
        scores = np.asarray(detections.score, np.float64)
        need = scores >= cfg.high_score
        if refresh <= 1 or not need.any():
            return need
        if not self.tracks or self._frame is None:
            return need & (scores >= cfg.new_track_score)
        steps = max(frame - self._frame, 1)
        mean, cov = self._states_after(steps, None if camera_motion is None else np.asarray(camera_motion, np.float64))
        overlap = iou_matrix(xyah_to_xyxy(mean[:, :4]), boxes)
        lost = np.array([t.time_since_update + steps > 1 for t in self.tracks])[:, None]
        has_feature = np.array([t.feature is not None for t in self.tracks])[:, None]
        gate = self.kf.gating_distance(mean, cov, xyxy_to_xyah(boxes)) <= GATE_4DOF
        near = overlap >= 1.0 - cfg.proximity
        candidate = np.where(lost, (gate & has_feature) | (overlap >= 1.0 - cfg.match_distance), near)
        count = candidate.sum(0)
        via_lost = (candidate & lost & has_feature).any(0)
        only = np.argmax(candidate, axis=0)
        stale = np.array([self.tracks[k].feature is None or frame - self.tracks[k].last_embedded >= refresh
                          for k in only])
        wanted = (count >= 2) | via_lost | ((count == 0) & (scores >= cfg.new_track_score)) | ((count == 1) & stale)
        return need & wanted

    def _states_after(self, steps: int, warp: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Every track's Kalman state moved by the camera (``warp``) and predicted ``steps`` frames
        ahead, without changing the tracks. Past max_age + 1 missed frames every track has ended
        or been dropped, so a jump of a million frames costs what max_age costs."""
        mean = np.stack([t.mean for t in self.tracks])
        cov = np.stack([t.cov for t in self.tracks])
        if warp is not None:
            mean, cov = warp_states(mean, cov, warp)
        for _ in range(min(steps, self.cfg.max_age + 2)):
            mean, cov = self.kf.predict(mean, cov)
        return mean, cov

    def _match(self, tracks: list[Track], dets: np.ndarray, boxes: np.ndarray, feats: Optional[np.ndarray],
               fused: bool, max_cost: Optional[float] = None):
        cfg = self.cfg
        max_cost = cfg.match_distance if max_cost is None else max_cost
        if not tracks or not len(dets):
            return [], list(tracks), list(dets)
        predicted = np.stack([t.box for t in tracks])
        cost = 1.0 - iou_matrix(predicted, boxes[dets])
        if fused and feats is None:  # motion only: ByteTrack's score-weighted overlap
            cost = 1.0 - (1.0 - cost) * self._scores[dets][None, :]
        if fused and feats is not None:
            nan = np.full(feats.shape[1], np.nan)
            mine = np.stack([nan if t.feature is None else t.feature for t in tracks])
            app = np.nan_to_num(cosine_distance(mine, feats[dets]) / cfg.distance_scale, nan=2.0)  # no feature: none
            lost = np.array([t.time_since_update > 1 for t in tracks])
            usable = app <= cfg.appearance_distance
            near = cost <= cfg.proximity
            gate = self._gate(tracks, boxes[dets])
            usable &= np.where(lost[:, None], gate, near)
            cost = np.where(usable, np.minimum(cost, app), cost)
        pairs, left_rows, left_cols = assign(cost, max_cost)
        return ([(tracks[r], int(dets[c])) for r, c in pairs], [tracks[r] for r in left_rows],
                [int(dets[c]) for c in left_cols])

    def _gate(self, tracks: list[Track], boxes: np.ndarray) -> np.ndarray:
        mean = np.stack([t.mean for t in tracks])
        cov = np.stack([t.cov for t in tracks])
        return self.kf.gating_distance(mean, cov, xyxy_to_xyah(boxes)) <= GATE_4DOF

    def _record(self, track: Track, box: np.ndarray, score: float, feat: Optional[np.ndarray], frame: int) -> None:
        """A matched detection joins the track (its Kalman state is already corrected)."""
        track.hits += 1
        track.time_since_update = 0
        track.frames.append(frame)
        w = self.cfg.box_smoothing
        if w:
            box = (1 - w) * np.asarray(box, np.float64) + w * track.box
        track.boxes.append(np.asarray(box, np.float32))
        track.scores.append(float(score))
        if feat is not None and np.isfinite(feat).all():
            track.last_embedded = frame
            track.feature_at.append(len(track.frames) - 1)
            track.features.append(feat.astype(np.float32))
            m = self.cfg.feature_momentum
            track.feature = feat if track.feature is None else l2_normalize(m * track.feature + (1 - m) * feat, dtype=None)
        if track.state == TENTATIVE and track.hits >= self.cfg.n_init:
            self._confirm(track, frame)

    def _start_track(self, box: np.ndarray, score: float, feat: Optional[np.ndarray], frame: int) -> None:
        mean, cov = self.kf.initiate(xyxy_to_xyah(box))
        if feat is not None and not np.isfinite(feat).all():
            feat = None
        track = Track(0, mean[0], cov[0], feature=feat, last_embedded=frame if feat is not None else -(10 ** 9),
                      frames=[frame], boxes=[np.asarray(box, np.float32)],
                      scores=[float(score)], features=[feat.astype(np.float32)] if feat is not None else [],
                      feature_at=[0] if feat is not None else [])
        self.tracks.append(track)
        if self._first_frame or self.cfg.n_init <= 1:
            self._confirm(track, frame)

    def _confirm(self, track: Track, frame: int) -> None:
        track.state = CONFIRMED
        lost = self._lost_match(track)
        if lost is not None:
            self._take_over(track, lost)
            return
        track.id = self._reentry_id(track, frame) or self._new_id()

    def _lost_match(self, track: Track) -> Optional[Track]:
        """The lost track (missed, not yet ended, seen last before this one began) that a newly
        confirmed track looks like, within ``appearance_distance``: the same person, who came out
        from behind someone away from where the Kalman filter expected."""
        cfg = self.cfg
        if not track.features:
            return None
        lost = [t for t in self.tracks if t is not track and t.state == CONFIRMED and t.time_since_update > 0
                and t.feature is not None and t.frames[-1] < track.frames[0]]
        if not lost:
            return None
        mine = l2_normalize(np.mean(track.features, 0), dtype=None)
        d = cosine_distance(mine[None], np.stack([t.feature for t in lost]))[0] / cfg.distance_scale
        best = int(np.argmin(d))
        return lost[best] if d[best] <= cfg.appearance_distance else None

    def _take_over(self, track: Track, lost: Track) -> None:
        """``track`` continues ``lost``: its id and its history; ``lost`` is gone."""
        self.tracks.remove(lost)
        shift = len(lost.frames)
        track.id = lost.id
        track.frames = lost.frames + track.frames
        track.boxes = lost.boxes + track.boxes
        track.scores = lost.scores + track.scores
        track.feature_at = lost.feature_at + [i + shift for i in track.feature_at]
        track.features = lost.features + track.features
        track.hits += lost.hits
        m = self.cfg.feature_momentum
        track.feature = l2_normalize(m * lost.feature + (1 - m) * track.feature, dtype=None)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _reentry_id(self, track: Track, frame: int) -> Optional[int]:
        if track.feature is None:
            return None
        feature = l2_normalize(np.mean(track.features, 0), dtype=None)
        old_id = self.memory.recall(feature, frame, (t.id for t in self.tracks if t.id))
        return old_id

    def _left_view(self, track: Track) -> bool:
        """Whether the track's last box touches an edge of the view and its motion points out through it."""
        if self._view is None or self.cfg.exit_border <= 0:
            return False
        w, h = self._view
        mx, my = self.cfg.exit_border * w, self.cfg.exit_border * h
        x1, y1, x2, y2 = track.boxes[-1]
        vx, vy = track.mean[4], track.mean[5]  # the Kalman filter's centre velocity, px a frame
        return bool((x1 <= mx and vx < 0) or (x2 >= w - mx and vx > 0) or (y1 <= my and vy < 0)
                    or (y2 >= h - my and vy > 0))

    def _end(self, track: Track, remember: bool = True) -> None:
        """The track becomes a tracklet; its identity is remembered for re-entry unless it left the view."""
        self.tracks.remove(track)
        tracklet = self._tracklet(track)
        self.finished.append(tracklet)
        if remember and tracklet.mean_feature is not None:
            self.memory.remember(track.id, int(tracklet.frames[-1]), tracklet.mean_feature)

    def _tracklet(self, track: Track) -> Tracklet:
        features = None
        if track.features:  # one row per observation; NaN where no feature was computed
            features = np.full((len(track.frames), len(track.features[0])), np.nan, np.float32)
            features[track.feature_at] = np.stack(track.features)
        tracklet = Tracklet(self.camera, track.id, np.array(track.frames, np.int64), np.stack(track.boxes),
                            np.array(track.scores, np.float32), features)
        return tracklet.filled(self.cfg.fill_gaps) if self.cfg.fill_gaps > 1 else tracklet

    def finish(self) -> list[Tracklet]:
        """End every confirmed track; all tracklets of the run, by id then start frame."""
        for track in [t for t in self.tracks if t.state == CONFIRMED]:
            self._end(track)
        self.tracks = []
        return sorted(self.finished, key=lambda t: (t.track_id, int(t.frames[0])))
