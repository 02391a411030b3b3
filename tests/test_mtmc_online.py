"""Online identities (``reid track --gallery``): finished tracklets matched against a gallery's
identities, in scenes whose answer is known, and the gallery's identity records."""

from __future__ import annotations

import itertools
import sqlite3

import numpy as np
import pytest

from reidkit.mtmc.associate import Topology, Transition
from reidkit.mtmc.online import OnlineIdentities
from reidkit.mtmc.tracklets import TrackletRecord
from reidkit.retrieval import Gallery
from reidkit.retrieval.gallery import DB_NAME


def unit(v):
    v = np.asarray(v, np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


def toward(a, b, distance):
    """A unit vector at cosine distance ``distance`` from unit ``a``, turned toward ``b``."""
    b = b - (b @ a) * a
    b = b / np.linalg.norm(b)
    c = 1.0 - distance
    return unit(c * a + np.sqrt(1 - c * c) * b)


@pytest.fixture
def gallery(tmp_path):
    with Gallery.create(tmp_path / "g", "m", 8) as g:
        yield g


def rec(camera, track, start, end, feature):
    return TrackletRecord(camera, track, float(start), float(end), unit(feature))


E = np.eye(8, dtype=np.float32)


def test_a_batch_is_matched_one_to_one_so_the_nearer_tracklet_wins(gallery):
    online = OnlineIdentities(gallery, threshold=0.2)
    A, B = E[0], toward(E[0], E[1], 0.2)  # two people who look alike, seen at the same time
    a, b = online.assign_batch([rec("c1", 1, 0, 10, A), rec("c1", 2, 0, 10, B)], [{}, {}])
    assert (a.identity_id, b.identity_id) == (1, 2) and not a.matched and not b.matched
    # t1 finishes first and is a little nearer A than B; t2 is much nearer A. Greedy in finishing
    # order would give t1 A and leave t2 nothing; one-to-one gives t2 A and t1 B.
    t1, t2 = unit(0.52 * A + 0.48 * B), toward(A, E[2], 0.05)
    assert 1 - t1 @ A < 1 - t1 @ B < 0.2 < 1 - t2 @ B  # the premises
    got = online.assign_batch([rec("c2", 1, 20, 30, t1), rec("c2", 2, 20, 30, t2)], [{}, {}])
    assert [g.identity_id for g in got] == [2, 1] and all(g.matched for g in got)
    assert got[1].distance == pytest.approx(0.05, abs=1e-5)


def test_an_identity_seen_at_that_time_in_that_camera_is_ruled_out(gallery):
    online = OnlineIdentities(gallery, threshold=0.3)
    first = online.assign(rec("c1", 1, 0, 10, E[0]), {})
    same_time = online.assign(rec("c1", 2, 5, 15, E[0]), {})  # identical look, but in c1 at 5-10 too
    later = online.assign(rec("c1", 3, 11, 20, E[0]), {})  # after both: may be either; the nearest item decides
    other_camera = online.assign(rec("c2", 1, 6, 9, E[0]), {})
    assert same_time.identity_id != first.identity_id and not same_time.matched
    assert later.matched and later.identity_id in (first.identity_id, same_time.identity_id)
    assert other_camera.matched


def test_the_threshold_decides_between_joining_and_a_new_identity(gallery):
    online = OnlineIdentities(gallery, threshold=0.2)
    base = online.assign(rec("c1", 1, 0, 10, E[0]), {}).identity_id
    near = online.assign(rec("c2", 1, 20, 30, toward(E[0], E[1], 0.19)), {})
    far = online.assign(rec("c3", 1, 20, 30, toward(E[0], E[2], 0.21)), {})
    assert near.identity_id == base and far.identity_id != base and not far.matched
    assert 0.2 < far.distance < 0.22  # the distance reported is the one to the nearest allowed item


def test_pieces_of_one_track_and_new_people_in_two_pieces_share_an_identity(gallery):
    online = OnlineIdentities(gallery, threshold=0.3)
    got = online.assign_batch([rec("c1", 5, 0, 4, E[3]), rec("c1", 6, 0, 9, E[4]), rec("c1", 5, 6, 9, E[5]),
                               rec("c1", 7, 10, 14, toward(E[4], E[6], 0.1))], [{}] * 4)
    assert got[0].identity_id == got[2].identity_id  # track 5 re-identified by the tracker: one person
    assert got[1].identity_id == got[3].identity_id  # new, alike, apart in time: clustered into one
    assert got[0].identity_id != got[1].identity_id
    assert len({g.identity_id for g in got}) == 2
    assert [h.track_id for h in gallery.identity(got[1].identity_id)] == [6, 7]  # in time order


def test_a_topology_rules_out_cameras_it_does_not_connect(gallery):
    topo = Topology((Transition("c1", "c2", 5.0, 30.0),))
    online = OnlineIdentities(gallery, threshold=0.3, topology=topo)
    base = online.assign(rec("c1", 1, 0, 10, E[0]), {}).identity_id
    assert online.assign(rec("c3", 1, 20, 30, E[0]), {}).identity_id != base  # no c1 -> c3 transition
    assert online.assign(rec("c2", 1, 12, 20, E[0]), {}).identity_id != base  # 2 s: faster than 5 s
    assert online.assign(rec("c2", 2, 20, 25, E[0]), {}).identity_id == base  # 10 s: allowed


def test_search_by_identity_groups_the_nearest_items(gallery):
    rng = np.random.default_rng(0)
    feats = np.stack([unit(E[i % 3] + 0.1 * rng.standard_normal(8)) for i in range(9)])
    ids = gallery.add(feats, [{"camera": f"c{i}", "timestamp": float(i), "end_timestamp": i + 0.5} for i in range(9)])
    gallery.set_identities({int(i): int(k % 3) + 1 for k, i in enumerate(ids)})
    found = gallery.search_identities(E[1], k=2)[0]
    reference = {}  # plain reference: each identity's best cosine similarity to the query
    for k, f in enumerate(feats):
        reference[k % 3 + 1] = max(reference.get(k % 3 + 1, -2), float(f @ E[1]))
    best = sorted(reference, key=lambda g: -reference[g])[:2]
    assert [f.identity_id for f in found] == best
    assert [f.score for f in found] == pytest.approx([reference[g] for g in best], abs=1e-5)
    summary = found[0].to_dict()
    assert summary["items"] == 3 and summary["cameras"] == ["c1", "c4", "c7"]
    assert (summary["first"], summary["last"]) == (1.0, 7.5)
    assert gallery.info()["identities"] == 3


def test_new_identities_are_unique_across_connections(tmp_path):
    Gallery.create(tmp_path / "g", "m", 8).close()
    a, b = Gallery.open(tmp_path / "g"), Gallery.open(tmp_path / "g")
    try:
        got = [g.store.new_identity() for g in itertools.islice(itertools.cycle([a, b]), 10)]
        assert got == list(range(1, 11))
        a.set_identities({}, reset=True)  # the counter never goes back
        assert b.store.new_identity() == 11
    finally:
        a.close()
        b.close()


def test_a_format_2_gallery_gains_identities_keeping_its_items(tmp_path):
    with Gallery.create(tmp_path / "g", "m", 8) as g:
        g.add(E[:2], [{"camera": "a", "track_id": 1}, {"camera": "b"}])
    db = sqlite3.connect(str(tmp_path / "g" / DB_NAME), isolation_level=None)  # rewrite it as format 2 had it
    db.executescript("""
        DROP INDEX items_identity;
        ALTER TABLE items DROP COLUMN identity_id; ALTER TABLE items DROP COLUMN end_timestamp;
        DELETE FROM settings WHERE key = 'identities';
        UPDATE settings SET value = '2' WHERE key = 'format';""")
    db.close()
    with Gallery.open(tmp_path / "g") as g:
        assert g.settings["format"] == "3" and len(g) == 2
        assert g.metadata([1])[1]["track_id"] == 1 and g.metadata([1])[1]["identity_id"] is None
        np.testing.assert_array_equal(g.vectors_of([1, 2]), E[:2])
        online = OnlineIdentities(g)
        assert online.assign(rec("a", 2, 0, 1, E[0]), {}).identity_id == 1  # the counter starts afresh
