"""Kalman filter against the textbook formulas, and the tracker on scripted scenes."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.detection.base import Detections
from reidkit.tracking import KalmanBoxFilter, Tracker, TrackerConfig
from reidkit.tracking.kalman import xyah_to_xyxy, xyxy_to_xyah
from reidkit.tracking.matching import assign, iou_matrix


def test_kalman_update_is_the_textbook_one():
    kf = KalmanBoxFilter()
    rng = np.random.default_rng(0)
    mean, cov = kf.initiate(np.array([[100.0, 200.0, 0.4, 80.0]]))
    mean, cov = kf.predict(mean, cov)
    z = np.array([[103.0, 198.0, 0.42, 82.0]])
    got_mean, got_cov = kf.update(mean, cov, z)
    # x + K (z - H x), K = P H' (H P H' + R)^-1, P' = (I - K H) P, with R as the filter states it.
    H = np.eye(4, 8)
    _, S = kf.project(mean, cov)
    K = cov[0] @ H.T @ np.linalg.inv(S[0])
    np.testing.assert_allclose(got_mean[0], mean[0] + K @ (z[0] - H @ mean[0]), rtol=1e-9)
    np.testing.assert_allclose(got_cov[0], (np.eye(8) - K @ H) @ cov[0], rtol=1e-7, atol=1e-9)
    # Mahalanobis distances of measurements drawn from the predicted distribution average 4 (dof).
    samples = rng.multivariate_normal(*(a[0] for a in kf.project(mean, cov)), size=4000)
    assert abs(kf.gating_distance(mean, cov, samples)[0].mean() - 4.0) < 0.3


def test_kalman_learns_the_velocity():
    kf = KalmanBoxFilter()
    rng = np.random.default_rng(1)
    truth = np.array([50.0, 300.0, 0.4, 100.0])
    mean, cov = kf.initiate(truth[None])
    for step in range(1, 40):
        mean, cov = kf.predict(mean, cov)
        z = truth + np.array([4.0, -1.5, 0, 0.5]) * step + rng.normal(0, 1.0, 4) * [1, 1, 0.005, 1]
        mean, cov = kf.update(mean, cov, z[None])
    np.testing.assert_allclose(mean[0, 4:], [4.0, -1.5, 0.0, 0.5], atol=0.3)


def test_box_conversions_round_trip_and_iou():
    boxes = np.array([[10, 20, 50, 120], [0, 0, 1, 3]], np.float64)
    np.testing.assert_allclose(xyah_to_xyxy(xyxy_to_xyah(boxes)), boxes)
    np.testing.assert_allclose(iou_matrix(boxes[:1], np.array([[30, 20, 70, 120], [100, 100, 110, 110]])),
                               [[20 * 100 / (2 * 4000 - 20 * 100), 0.0]])
    matches, rows, cols = assign(np.array([[0.1, 0.9], [0.2, 0.95]]), max_cost=0.5)
    assert matches == [(0, 0)] and rows == [1] and cols == [1]


def person_box(x: float, y: float = 200.0, w: float = 40.0, h: float = 100.0) -> np.ndarray:
    return np.array([x, y, x + w, y + h])


def run(tracker: Tracker, scene: list[list[tuple[int, np.ndarray, float]]], feats: dict[int, np.ndarray] | None):
    """Feed a scripted scene (per frame: (person, box, score)); map person -> set of track ids."""
    seen: dict[int, set[int]] = {}
    for frame, people in enumerate(scene, start=1):
        boxes = np.array([b for _, b, _ in people]).reshape(-1, 4)
        scores = np.array([s for _, _, s in people])
        dim = len(next(iter(feats.values()))) if feats else 0
        emb = None if feats is None else np.array([feats[p] for p, _, _ in people]).reshape(len(people), dim)
        for track in tracker.update(Detections(boxes, scores), emb, frame):
            owner = min(people, key=lambda p: np.abs(p[1] - track.boxes[-1]).sum())[0]
            seen.setdefault(owner, set()).add(track.id)
    return seen


def distinct_features(n: int, dim: int = 64, seed: int = 0) -> dict[int, np.ndarray]:
    v = np.random.default_rng(seed).standard_normal((n, dim))
    return {i: v[i] / np.linalg.norm(v[i]) for i in range(n)}


def test_crossing_people_keep_their_ids_with_appearance():
    scene = []
    for t in range(60):  # A walks right, B walks left; they overlap for several frames mid-way
        scene.append([(0, person_box(100 + 6 * t), 0.9), (1, person_box(460 - 6 * t, 205), 0.9)])
    seen = run(Tracker(TrackerConfig()), scene, distinct_features(2))
    assert seen[0] != seen[1] and len(seen[0]) == 1 and len(seen[1]) == 1


def test_short_occlusion_keeps_the_id_and_low_scores_stay_tracked():
    scene = []
    for t in range(50):
        people = [] if 20 <= t < 28 else [(0, person_box(100 + 5 * t), 0.2 if 30 <= t < 40 else 0.9)]
        scene.append(people)
    tracker = Tracker(TrackerConfig(max_age=15))
    seen = run(tracker, scene, None)
    assert len(seen[0]) == 1
    (tracklet,) = tracker.finish()
    assert set(range(31, 41)) <= set(tracklet.frames.tolist())  # the weak frames joined the track


def test_reentry_restores_the_id_only_with_matching_appearance():
    def scene():
        frames = []
        for t in range(200):
            if t < 40:
                frames.append([(0, person_box(100 + 4 * t), 0.9)])
            elif t < 140:
                frames.append([])  # gone far longer than max_age
            else:
                frames.append([(0, person_box(600 - 4 * (t - 140)), 0.9)])  # back, elsewhere
        return frames

    cfg = TrackerConfig(max_age=20)
    tracker = Tracker(cfg)
    seen = run(tracker, scene(), distinct_features(1))
    assert len(seen[0]) == 1 and tracker.reentries == 1
    motion_only = Tracker(cfg)
    assert len(run(motion_only, scene(), None)[0]) == 2 and motion_only.reentries == 0
    stranger = Tracker(cfg)  # someone else comes in: no re-entry
    feats = distinct_features(2)
    frames = scene()
    for t in range(140, 200):
        frames[t] = [(1, frames[t][0][1], 0.9)]
    seen = run(stranger, frames, feats)
    assert seen[0] != seen[1] and stranger.reentries == 0


def test_distance_scale_puts_a_wider_spread_model_on_the_thresholds_scale():
    # The person comes back looking 0.15 (cosine) away from before: beyond re-entry's 0.1 for the
    # shipped model's scale, within it for a model that spreads distances twice as wide.
    a = np.zeros(16)
    a[0] = 1.0
    b = np.zeros(16)
    b[0], b[1] = 0.85, np.sqrt(1 - 0.85 ** 2)
    frames = []
    for t in range(200):
        if t < 40:
            frames.append([(0, person_box(100 + 4 * t), 0.9)])
        elif t < 140:
            frames.append([])
        else:
            frames.append([(1, person_box(600 - 4 * (t - 140)), 0.9)])
    for scale, same in ((1.0, False), (2.0, True)):
        tracker = Tracker(TrackerConfig(max_age=20, distance_scale=scale))
        seen = run(tracker, frames, {0: a, 1: b})
        assert (seen[0] == seen[1]) is same and tracker.reentries == int(same)
    with pytest.raises(ValueError, match="distance_scale > 0"):
        TrackerConfig(distance_scale=0)


def test_tracker_input_errors():
    tracker = Tracker()
    tracker.update(Detections(np.zeros((0, 4)), np.zeros(0)), None, 5)
    with pytest.raises(ValueError, match="frames must increase"):
        tracker.update(Detections(np.zeros((0, 4)), np.zeros(0)), None, 5)
    with pytest.raises(ValueError, match="2 boxes, 1 scores"):
        tracker.update(Detections(np.zeros((2, 4)), np.zeros(1)), None, 6)
    with pytest.raises(ValueError, match="low_score <= high_score"):
        TrackerConfig(low_score=0.8, high_score=0.5)


def needs(tracker: Tracker, boxes: np.ndarray, scores: np.ndarray, frame: int, refresh: int) -> np.ndarray:
    """What ``tracker`` would embed in ``frame`` if its features were renewed every ``refresh`` frames."""
    tracker.cfg.appearance_refresh = refresh
    return tracker.needs_appearance(Detections(boxes, scores), frame)


def test_only_boxes_whose_appearance_can_matter_are_embedded():
    tracker = Tracker()
    feats = distinct_features(2)
    boxes = np.array([person_box(100), person_box(300)])
    tracker.update(Detections(boxes, np.array([0.9, 0.9])), np.stack([feats[0], feats[1]]), 1)  # confirmed at once
    same = np.array([person_box(102), person_box(600), person_box(200), person_box(450)])
    scores = np.array([0.9, 0.9, 0.9, 0.5])
    # continues track 1 alone / starts a track / starts a track / nobody to match, too weak to start one
    assert needs(tracker, same, scores, 2, 10).tolist() == [False, True, True, False]
    assert needs(tracker, same, scores, 2, 1).tolist() == [True] * 4  # refresh 1: every box
    assert not needs(tracker, same, np.full(4, 0.2), 2, 1).any()  # weak boxes: IoU only
    for frame in range(2, 11):  # both seen every frame, never re-embedded
        tracker.update(Detections(boxes, np.array([0.9, 0.9])), None, frame)
    # track 1's feature is 10 frames old: due
    assert needs(tracker, same, scores, 11, 10).tolist() == [True, True, True, False]

    crowded = Tracker()
    crowded.update(Detections(np.array([person_box(100), person_box(125)]), np.array([0.9, 0.9])),
                   np.stack([feats[0], feats[1]]), 1)
    # near both tracks: appearance decides between them
    assert needs(crowded, np.array([person_box(102)]), np.array([0.9]), 2, 10).tolist() == [True]

    lost = Tracker()
    lost.update(Detections(np.array([person_box(100)]), np.array([0.9])), feats[0][None], 1)
    # unseen for 4 frames: a box near it may be that person again, only appearance can tell
    assert needs(lost, np.array([person_box(104)]), np.array([0.9]), 5, 10).tolist() == [True]


def test_boxes_of_two_overlapping_people_leave_feature_memory_alone():
    feats = distinct_features(3)
    tracker = Tracker(TrackerConfig(crowded_overlap=0.3))
    tracker.update(Detections(np.array([person_box(100), person_box(150), person_box(400)]), np.full(3, 0.9)),
                   np.stack([feats[0], feats[1], feats[2]]), 1)
    # frame 2: the first two overlap (IoU 0.33) and their crops would mix both people
    boxes = np.array([person_box(112), person_box(132), person_box(402)])
    mixed = (feats[0] + feats[1]) / np.linalg.norm(feats[0] + feats[1])
    tracker.update(Detections(boxes, np.full(3, 0.9)), np.stack([mixed, mixed, feats[0]]), 2)
    by_start = {round(float(t.boxes[0][0])): t for t in tracker.tracks}
    np.testing.assert_allclose(by_start[100].feature, feats[0])
    np.testing.assert_allclose(by_start[150].feature, feats[1])
    assert by_start[100].last_embedded == by_start[150].last_embedded == 1
    assert by_start[400].last_embedded == 2 and not np.allclose(by_start[400].feature, feats[2])
    trusting = Tracker(TrackerConfig(crowded_overlap=1.0))  # the check off: the mixed crops get in
    trusting.update(Detections(np.array([person_box(100), person_box(150)]), np.full(2, 0.9)), np.stack([feats[0], feats[1]]), 1)
    trusting.update(Detections(boxes[:2], np.full(2, 0.9)), np.stack([mixed, mixed]), 2)
    assert all(t.last_embedded == 2 for t in trusting.tracks)


def textured_frame(h: int = 360, w: int = 480, seed: int = 0) -> np.ndarray:
    import cv2

    noise = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    gray = cv2.GaussianBlur(noise, (0, 0), 2.0)
    gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX)
    return np.repeat(gray[:, :, None], 3, axis=2)


@pytest.mark.parametrize("angle, scale, shift", [(0.0, 1.0, (12.0, -7.0)), (2.0, 1.03, (-5.0, 4.0))])
def test_camera_motion_recovers_a_known_transform(angle, scale, shift):
    import cv2

    from reidkit.tracking.camera_motion import CameraMotion

    big = textured_frame(600, 800)
    truth = cv2.getRotationMatrix2D((400, 300), angle, scale)
    truth[:, 2] += shift
    before = big[120:480, 160:640]  # crops keep the borders free of warping artefacts
    after = cv2.warpAffine(big, truth, (800, 600), flags=cv2.INTER_LINEAR)[120:480, 160:640]
    # In crop coordinates the same linear part applies; the shift picks up the crop offset.
    offset = np.array([160.0, 120.0])
    expected = truth.copy()
    expected[:, 2] = truth[:, :2] @ offset + truth[:, 2] - offset
    cm = CameraMotion()
    np.testing.assert_allclose(cm.estimate(before), [[1, 0, 0], [0, 1, 0]])  # first frame: nothing to compare
    got = cm.estimate(after)
    np.testing.assert_allclose(got[:, :2], expected[:, :2], atol=2e-3)
    np.testing.assert_allclose(got[:, 2], expected[:, 2], atol=0.5)


def test_camera_motion_ignores_the_people_and_gives_identity_on_a_flat_frame():
    from reidkit.tracking.camera_motion import CameraMotion

    cm = CameraMotion()
    flat = np.full((240, 320, 3), 90, np.uint8)
    cm.estimate(flat)
    np.testing.assert_array_equal(cm.estimate(flat), [[1, 0, 0], [0, 1, 0]])  # no corners to follow
    still = textured_frame()
    moved = still.copy()
    moved[100:200, 100:160] = np.roll(still[100:200, 100:160], 9, axis=1)  # someone moving, camera still
    cm = CameraMotion()
    cm.estimate(still, np.array([[96, 96, 164, 204]]))
    np.testing.assert_allclose(cm.estimate(moved, np.array([[96, 96, 164, 204]])), [[1, 0, 0], [0, 1, 0]],
                               atol=0.05)


def test_warp_states_moves_boxes_like_their_corners():
    from reidkit.tracking.camera_motion import warp_states

    kf = KalmanBoxFilter()
    box = np.array([100.0, 50.0, 140.0, 150.0])
    mean, cov = kf.initiate(xyxy_to_xyah(box))
    mean[0, 4:6] = [3.0, -1.0]  # moving right and up
    warp = np.array([[1.1, 0.0, -20.0], [0.0, 1.1, 6.0]])  # zoom and pan
    new_mean, new_cov = warp_states(mean, cov, warp)
    corners = box.reshape(2, 2) @ warp[:, :2].T + warp[:, 2]
    np.testing.assert_allclose(xyah_to_xyxy(new_mean[0, :4])[0], corners.reshape(-1), atol=1e-9)
    np.testing.assert_allclose(new_mean[0, 4:6], [3.3, -1.1])
    assert np.allclose(new_cov, new_cov.transpose(0, 2, 1)) and new_cov[0, 3, 3] == pytest.approx(cov[0, 3, 3] * 1.21)


def test_camera_pan_breaks_motion_tracking_unless_compensated():
    pan = 45.0  # pixels a frame: boxes 40 px wide no longer overlap from one frame to the next
    scene = [[(p, person_box(400 + 120 * p - pan * t), 0.9) for p in range(3)] for t in range(12)]
    warp = np.array([[1.0, 0.0, -pan], [0.0, 1.0, 0.0]])

    def ids(compensate: bool) -> dict[int, set[int]]:
        tracker, seen = Tracker(TrackerConfig(n_init=1)), {}
        for frame, people in enumerate(scene, start=1):
            boxes = np.array([b for _, b, _ in people])
            for track in tracker.update(Detections(boxes, np.full(len(boxes), 0.9)), None, frame,
                                        warp if compensate and frame > 1 else None):
                owner = min(people, key=lambda p: np.abs(p[1] - track.boxes[-1]).sum())[0]
                seen.setdefault(owner, set()).add(track.id)
        return seen

    assert all(len(v) == 1 for v in ids(True).values())
    assert any(len(v) > 1 for v in ids(False).values())
    with pytest.raises(ValueError, match="2x3 transform"):
        Tracker().update(Detections(np.zeros((1, 4)) + [0, 0, 10, 20], np.ones(1)), None, 1, np.eye(3))


def test_gaps_inside_a_tracklet_are_filled_by_linear_interpolation():
    from reidkit.tracking.tracker import Tracklet

    frames = np.array([1, 2, 5, 20])  # a 2-frame gap (3, 4) and a 14-frame gap
    boxes = np.array([[0, 0, 10, 20], [3, 0, 13, 20], [12, 6, 22, 26], [50, 0, 60, 20]], np.float32)
    feats = np.eye(4, 3, dtype=np.float32)
    t = Tracklet("c", 7, frames, boxes, np.array([0.9, 0.8, 0.5, 0.7], np.float32), feats).filled(10)
    np.testing.assert_array_equal(t.frames, [1, 2, 3, 4, 5, 20])
    np.testing.assert_allclose(t.boxes[2], [6, 2, 16, 22])
    np.testing.assert_allclose(t.boxes[3], [9, 4, 19, 24])
    np.testing.assert_allclose(t.scores, [0.9, 0.8, 0.5, 0.5, 0.5, 0.7])  # the lower neighbour's
    np.testing.assert_array_equal(t.observed, [True, True, False, False, True, True])
    assert np.isnan(t.features[2:4]).all() and (t.features[[0, 1, 4, 5]] == feats).all()
    np.testing.assert_allclose(t.mean_feature, Tracklet("c", 7, frames, boxes, t.scores[[0, 1, 4, 5]],
                                                        feats).mean_feature)  # the fill adds no appearance


def test_a_tracker_fills_short_gaps_and_smooths_boxes_with_the_kalman_estimate():
    scene = [[(0, person_box(100 + 5 * f), 0.9)] if f not in (4, 5) else [] for f in range(12)]
    for smoothing in (0.0, 0.5):
        tracker = Tracker(TrackerConfig(box_smoothing=smoothing))
        run(tracker, scene, None)
        (t,) = tracker.finish()
        np.testing.assert_array_equal(t.frames, np.arange(1, 13))  # frames 5 and 6 filled
        observed = t.boxes[t.observed]
        detections = np.stack([person_box(100 + 5 * f) for f in range(12) if f not in (4, 5)])
        if smoothing == 0.0:
            np.testing.assert_allclose(observed, detections, atol=1e-4)
        else:  # half-way to the Kalman estimate: inside the detection's neighbourhood, not on it
            assert 0 < np.abs(observed - detections).max() < 5


def test_without_features_faint_boxes_must_overlap_more():
    """Motion only, the box distance is 1 - IoU x score (ByteTrack): an IoU of 0.3 matches a box of
    score 0.9 (distance 0.73 <= 0.8) but not one of score 0.5 (0.85)."""
    for score, same in ((0.9, True), (0.5, False)):
        tracker = Tracker(TrackerConfig(high_score=0.3, new_track_score=0.3, n_init=1))
        tracker.update(Detections(person_box(100)[None], np.array([0.9])), None, 1)
        moved = person_box(100 + 40 * (1 - 0.3) / 1.3)[None]  # IoU 0.3 with the first box, same size
        assert iou_matrix(person_box(100)[None], moved)[0, 0] == pytest.approx(0.3, abs=1e-6)
        tracker.update(Detections(moved, np.array([score])), None, 2)
        ids = {t.track_id for t in tracker.finish()}
        assert (len(ids) == 1) == same, (score, ids)


def test_scores_that_are_not_probabilities_start_tracks_lower():
    assert TrackerConfig.for_scores(True).new_track_score == 0.65
    assert TrackerConfig.for_scores(False).new_track_score == 0.3
    assert TrackerConfig.for_scores(False, max_age=5).max_age == 5
    with pytest.raises(ValueError, match="box_smoothing"):
        TrackerConfig(box_smoothing=1.5)


def exit_and_return(inward_after_gap: bool) -> list[list[tuple[int, np.ndarray, float]]]:
    """One person in a 640-wide view: walks right until the box touches the right edge, is unseen
    for 10 frames (less than max_age), then a box with the same look appears at that edge walking
    left. ``inward_after_gap`` False: the person walked out; True: they turned back before the edge,
    were hidden, and are seen again further in."""
    frames = []
    for t in range(20):
        x = 480 + 6 * t if not inward_after_gap else 560 - 3 * t
        frames.append([(0, person_box(min(x, 600)), 0.9)])
    frames += [[] for _ in range(10)]
    for t in range(20):
        frames.append([(0, person_box(600 - 4 * t if not inward_after_gap else 470 - 3 * t), 0.9)])
    return frames


def test_a_person_who_leaves_the_view_comes_back_with_a_new_id():
    feats = distinct_features(1)
    inside = Tracker()  # no frame size: the look alone brings the old id back
    assert len(run(inside, exit_and_return(False), feats)[0]) == 1
    viewed = Tracker()
    viewed.set_view(640, 480)
    assert len(run(viewed, exit_and_return(False), feats)[0]) == 2 and viewed.reentries == 0
    first = min(viewed.finish(), key=lambda t: t.frames[0])
    assert first.frames[-1] == 20  # it ended when it left, not max_age frames later
    hidden = Tracker()  # at the edge but walking back in: hidden, not gone
    hidden.set_view(640, 480)
    assert len(run(hidden, exit_and_return(True), feats)[0]) == 1
    with pytest.raises(ValueError, match="frame size must be positive"):
        Tracker().set_view(0, 480)
    with pytest.raises(ValueError, match="exit_border < 0.5"):
        TrackerConfig(exit_border=0.5)


def test_a_new_track_that_looks_like_a_lost_one_continues_it():
    def scene(returning: int) -> list:
        frames = [[(0, person_box(100 + 5 * t), 0.9)] for t in range(20)]
        frames += [[] for _ in range(8)]  # hidden, less than max_age
        # seen again far from where the Kalman filter expects it (outside its gate)
        return frames + [[(returning, person_box(450 + 5 * t, 120), 0.9)] for t in range(20)]

    feats = distinct_features(2)
    same = Tracker()
    seen = run(same, scene(0), feats)
    assert len(seen[0]) == 1 and same.reentries == 0
    (tracklet,) = same.finish()
    np.testing.assert_array_equal(tracklet.frames, np.arange(1, 49))  # the 8 hidden frames filled
    assert tracklet.observed.sum() == 40
    assert np.isfinite(tracklet.features).all(1).sum() == 40  # both parts' features kept, in order
    stranger = Tracker()
    seen = run(stranger, scene(1), feats)
    assert seen[0] != seen[1]
    assert sorted(len(t.frames) for t in stranger.finish()) == [20, 20]
