"""The demo's pipeline run: track people in the first half of a clip into a gallery, then look
for a person from the second half in it, and draw what was found.

It shows the whole chain on real footage offline: detector -> ReID -> tracker -> gallery ->
search, with the annotated videos and a rank-list picture to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

from ..fileio import atomic_write


def run_demo_pipeline(video: Path, out: Path, top_k: int = 5, truth: Optional[Path] = None) -> dict[str, Any]:
    """Returns a summary; writes ``out/first``, ``out/second`` (tracks, crops, MP4), ``out/gallery``
    and ``out/search.png``. With ``truth`` (MOTChallenge ground truth of the video), the query is a
    person seen in both halves and every hit is marked right or wrong."""
    from ..inference.resolve import ModelSpec, record_name
    from ..mtmc.online import OnlineIdentities
    from ..retrieval import Gallery
    from ..retrieval.gallery import DB_NAME
    from ..viz.figures import RankedItem, rank_list_png
    from .components import DEFAULT_DETECTOR, make_detector, make_embedder
    from .sources import VideoSource
    from ..tracking import TrackerConfig
    from .track import REID_EVERY, run_tracking

    probe = VideoSource(video)
    total = probe.frame_count or 0
    probe.cap.release()
    if total < 20:
        raise ValueError(f"{video}: {total} frames; the demo needs at least 20")
    half = total // 2
    detect, _, _ = make_detector(DEFAULT_DETECTOR, 0.3)
    embedder = make_embedder("default")
    gallery_dir = out / "gallery"
    if (gallery_dir / DB_NAME).exists():  # a previous demo's gallery: start afresh
        shutil.rmtree(gallery_dir)
    record = ModelSpec().record(embedder.preprocess, embedder.flip)
    summary: dict[str, Any] = {}
    with Gallery.create(gallery_dir, record_name(record), embedder.dim, model_spec=record) as gallery:
        config = TrackerConfig(appearance_refresh=REID_EVERY)
        first = run_tracking(VideoSource(video, limit=half), detect, embedder, config, camera="cam1",
                             output=out / "first",
                             identities=OnlineIdentities(gallery))
        second = run_tracking(VideoSource(video, start=half + 1), detect, embedder, config, camera="cam1",
                              output=out / "second")
        summary["first_half"] = first.summary()
        summary["second_half"] = second.summary()
        candidates = [t for t in second.tracklets if t.crop is not None and t.mean_feature is not None]
        person: dict[int, Optional[int]] = {}
        in_first: dict[int, Optional[int]] = {}
        if truth is not None:
            from ..tracking.mot import read_mot, truth_identities

            gt = read_mot(truth, "ground truth")
            person, in_first = truth_identities(second.tracklets, gt), truth_identities(first.tracklets, gt)
            both = [t for t in candidates if person.get(t.track_id) is not None
                    and person[t.track_id] in in_first.values()]
            candidates = both or candidates
        if not candidates or not len(gallery):
            summary["search"] = "nobody to search for"
            return summary
        query = max(candidates, key=lambda t: len(t.frames))
        query_path = out / "query.jpg"
        from PIL import Image

        atomic_write(query_path, lambda f: Image.fromarray(query.crop).save(f, format="JPEG", quality=92))
        hits = gallery.search(query.mean_feature, top_k)[0]
    who = person.get(query.track_id)

    def right(hit) -> Optional[bool]:
        found = in_first.get(hit.track_id)
        return None if who is None or found is None else found == who
    ranked = [RankedItem(h.source, 1.0 - h.score, f"track {h.track_id}", right(h)) for h in hits if h.source]
    known = f" (person {who})" if who is not None else ""
    png = rank_list_png(query_path, f"track {query.track_id}", ranked,
                        title=f"track {query.track_id}{known}, frames {half + 1}-{total}, in the tracks of frames 1-{half}"
                              + ("\ngreen: the same person, red: another (ground truth)" if who is not None else ""))
    picture = atomic_write(out / "search.png", lambda f: f.write(png))
    summary["search"] = {"query_track": query.track_id, "query_frames": [int(query.frames[0]), int(query.frames[-1])],
                         "query_person": who, "hits": [{**h.to_dict(), "person": in_first.get(h.track_id),
                                                        "right": right(h)} for h in hits],
                         "picture": str(picture)}
    return summary
