"""Vector indexes (faiss kinds, Milvus) against a plain numpy search, and their files."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.retrieval import ExactIndex, FaissIndex, IndexFileError, build_index, open_index
from reidkit.retrieval.vectors import as_ids, as_vectors


def unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def reid_like(n: int, dim: int, seed: int = 0, people: int = 1200) -> np.ndarray:
    """Unit vectors the way ReID features come: several per person, each at cosine ~0.8 to the
    person's (random) centre. The centres use one fixed seed, so queries from another ``seed``
    are new views of the same people."""
    centres = unit(people, dim, seed=12345)
    rng = np.random.default_rng(seed)
    v = centres[rng.integers(0, people, n)] + 0.75 / np.sqrt(dim) * rng.standard_normal((n, dim))
    v = v.astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute_force(db: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The obviously-correct search: all inner products, sorted."""
    sims = queries @ db.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), ids[order]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


IDS = np.arange(12_000, dtype=np.int64) * 7 + 3  # ids need not be positions


@pytest.fixture(scope="module")
def data():
    return reid_like(12_000, 32), reid_like(40, 32, seed=1)


def test_flat_is_exact(data):
    db, queries = data
    index = build_index(32, IDS, db, kind="flat")
    scores, ids = index.search(queries, 10)
    want_scores, want_ids = brute_force(db, IDS, queries, 10)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)


# IVF-PQ's 4-bit codes alone rank roughly (the gallery re-scores its candidates exactly, see
# test_gallery's test_ivfpq_candidates_are_rescored_exactly); 16 codes of 2 dims each here.
@pytest.mark.parametrize("kind, params, at_least", [("hnsw", {}, 0.95), ("ivfpq", {"pq_m": 16}, 0.6)])
def test_approximate_kinds_find_most_true_neighbours(data, kind, params, at_least):
    db, queries = data
    index = build_index(32, IDS, db, kind=kind, **params)
    assert len(index) == len(db) and index.kind == kind
    _, ids = index.search(queries, 10)
    _, want = brute_force(db, IDS, queries, 10)
    assert recall(ids, want) >= at_least


def test_automatic_choices(data):
    db, _ = data
    assert isinstance(build_index(32, IDS[:100], db[:100]), ExactIndex)
    ivfpq = build_index(32, IDS, db, kind="ivfpq")
    assert ivfpq.params["pq_m"] == 8  # a 4-bit code per 4 dimensions
    assert ivfpq.params["nlist"] == int(min(4 * np.sqrt(len(db)), len(db) // 39))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_remove_and_allowed_ids_are_respected(data, kind):
    db, queries = data
    index = build_index(32, IDS, db, kind=kind)
    _, first = index.search(queries, 5)
    gone = np.unique(first[:, 0])
    assert index.remove(np.append(gone, 999_999_999)) == len(gone)  # unknown ids are ignored
    assert index.remove(gone) == 0 and len(index) == len(db) - len(gone)
    _, ids = index.search(queries, 10)
    assert not np.isin(ids, gone).any()
    allowed = IDS[::5]
    _, ids = index.search(queries, 10, allowed=allowed)
    assert np.isin(ids[ids >= 0], allowed).all() and (ids >= 0).mean() > 0.5
    if kind == "flat":  # exact: equals brute force over the allowed, not removed rows
        keep = np.isin(IDS, allowed) & ~np.isin(IDS, gone)
        np.testing.assert_array_equal(ids, brute_force(db[keep], IDS[keep], queries, 10)[1])


def test_search_pads_with_minus_one_and_refuses_bad_input(data):
    db, queries = data
    index = build_index(32, IDS[:3], db[:3], kind="flat")
    scores, ids = index.search(queries[:2], 5)
    assert (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()
    with pytest.raises(ValueError, match="already in the index"):
        index.add(IDS[:1], db[:1])
    bad = db[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(ValueError, match="row 2 holds NaN"):
        index.add(IDS[10:14], bad)
    with pytest.raises(ValueError, match=r"expected shape \(N, 32\), got \(2, 16\)"):
        index.search(queries[:2, :16], 3)
    with pytest.raises(ValueError, match="appears more than once"):
        as_ids([1, 2, 1])
    with pytest.raises(ValueError, match="3 ids for 2 vectors"):
        as_ids([1, 2, 3], 2)
    with pytest.raises(ValueError, match="real numbers"):
        as_vectors(np.array([["a"] * 32]), 32)
    with pytest.raises(ValueError, match="unknown index kind 'lsh'"):
        build_index(32, IDS[:3], db[:3], kind="lsh")
    with pytest.raises(ValueError, match="unknown faiss index kind 'flat'"):
        FaissIndex(32, "flat")
    with pytest.raises(ValueError, match="needs at least"):
        build_index(32, IDS[:500], db[:500], kind="ivfpq")


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_save_load_gives_the_same_answers(tmp_path, data, kind):
    db, queries = data
    index = build_index(32, IDS, db, kind=kind)
    index.remove(IDS[:10])
    index.state = {"max_id": 42}
    loaded = open_index(index.save(tmp_path / "ix.bin"))
    assert type(loaded) is type(index) and loaded.kind == kind and loaded.state == {"max_id": 42}
    assert len(loaded) == len(index)
    for a, b in zip(index.search(queries, 10), loaded.search(queries, 10)):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_damaged_index_files_are_detected(tmp_path, data):
    db, _ = data
    path = build_index(32, IDS[:2000], db[:2000], kind="flat").save(tmp_path / "ix.bin")
    raw = path.read_bytes()
    cases = {
        "missing": None,
        "truncated": raw[: len(raw) // 2],
        "cut at the end": raw[:-3],
        "flipped byte": raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0xFF]) + raw[len(raw) // 2 + 1:],
        "garbage": b"\x00" * 100,
        "empty": b"",
    }
    for name, content in cases.items():
        target = tmp_path / f"{name}.bin"
        if content is not None:
            target.write_bytes(content)
        with pytest.raises(IndexFileError):
            open_index(target)
    with pytest.raises(IndexFileError, match="checksum mismatch"):
        open_index(tmp_path / "flipped byte.bin")


def test_milvus_lite_answers_like_exact_faiss(tmp_path, data):
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from reidkit.retrieval.milvus_index import MilvusIndex

    db, queries = data
    n = 3000
    index = MilvusIndex(32, str(tmp_path / "m.db"), "test")
    index.add(IDS[:n], db[:n])
    exact = build_index(32, IDS[:n], db[:n], kind="flat")  # numpy
    assert len(index) == n
    got, want = index.search(queries, 10), exact.search(queries, 10)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], atol=1e-5)
    gone = want[1][:, 0]
    assert index.remove(gone) == len(np.unique(gone))
    allowed = IDS[:n:3]
    _, ids = index.search(queries, 10, allowed=allowed)
    assert np.isin(ids[ids >= 0], allowed).all() and not np.isin(ids, gone).any()
    with pytest.raises(ValueError, match="already in the index"):
        index.add(IDS[5:6], db[5:6])
    index.state = {"max_id": 7}
    path = index.save(tmp_path / "pointer.bin")
    index.client.close()
    again = open_index(path)
    assert isinstance(again, MilvusIndex) and again.state == {"max_id": 7} and len(again) == n - len(np.unique(gone))
    with pytest.raises(ValueError, match="dimension 32, not 16"):
        MilvusIndex(16, str(tmp_path / "m.db"), "test")


def test_exact_index_merges_blocks_like_one_search(data, monkeypatch):
    from reidkit.retrieval import exact_index

    db, queries = data
    monkeypatch.setattr(exact_index, "BLOCK", 997)  # many blocks, the last one short
    index = build_index(32, IDS, db, kind="flat")
    for k, allowed in ((10, None), (25, IDS[::37]), (5, IDS[:3])):  # k larger than the allowed set too
        scores, ids = index.search(queries, k, allowed=allowed)
        keep = np.ones(len(IDS), bool) if allowed is None else np.isin(IDS, allowed)
        want_scores, want_ids = brute_force(db[keep], IDS[keep], queries, k)
        m = want_ids.shape[1]
        np.testing.assert_array_equal(ids[:, :m], want_ids)
        np.testing.assert_allclose(scores[:, :m], want_scores, atol=1e-5)
        assert (ids[:, m:] == -1).all()
    index.add(np.array([10**9]), db[:1])  # grows past its capacity and keeps working
    assert len(index) == len(IDS) + 1 and index.search(db[:1], 2)[1][0, :2].tolist() in ([IDS[0], 10**9], [10**9, IDS[0]])
