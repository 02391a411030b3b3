"""Galleries with their model: create one for a model, open or create one for tracking, add image
files in committed chunks, search with a query image. What `reid gallery` and `reid track
--gallery` do, as library calls (the HTTP service calls the same).

A gallery records the model its features came from (:meth:`ModelSpec.record`); every embedder
here is rebuilt from that record, and refused when the model files changed since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from ..inference.resolve import ModelSpec, embedder_from_record, record_name, resolve_embedder
from ..retrieval import Filters, Gallery, Hit, IdentityHit
from ..retrieval.gallery import DB_NAME
from ..retrieval.sources import metadata_from_name


def model_record(gallery: Gallery) -> dict:
    """The model record the gallery was created with ({} for galleries filled from Python)."""
    return json.loads(gallery.settings.get("model_spec") or "{}")


def gallery_embedder(gallery: Gallery, images: int = 1, batch_size: int = 32, device: str = "cpu",
                     runtime: Optional[str] = None, spinning: bool = True):
    """The embedder the gallery was created with (refusing model files that changed since), in
    ``runtime`` (default: the faster one for ``images`` images)."""
    from ..inference.embedder import runtime_for

    return embedder_from_record(model_record(gallery), f"gallery {gallery.folder}", batch_size=batch_size,
                                device=device, runtime=runtime or runtime_for(images, device), spinning=spinning)


def create_gallery(folder: Path, spec: ModelSpec, engine: str = "faiss", index_kind: str = "auto",
                   milvus_uri: Optional[str] = None) -> tuple[Gallery, dict]:
    """A new, empty gallery for the model ``spec`` names; (gallery, its model record)."""
    record = spec.record()
    embedder = resolve_embedder(spec, batch_size=1)
    gallery = Gallery.create(folder, record_name(record), embedder.dim, engine=engine, index_kind=index_kind,
                             milvus_uri=milvus_uri, model_spec=record)
    return gallery, record


def open_or_create_gallery(folder: Path, reid: Optional[str]):
    """(gallery, embedder) for ``reid track --gallery``: an existing gallery brings its own model,
    and a ``reid`` model that gives other features is refused (they would not compare with the
    gallery's); a new gallery is made for the ``reid`` model (default: the shipped one). The
    embedder runs in onnxruntime with sleeping idle threads (the detector runs between batches)."""
    if (folder / DB_NAME).exists():
        gallery = Gallery.open(folder)
        try:
            record = model_record(gallery)
            if reid is not None:
                asked = ModelSpec.parse(reid).record()
                if not record or asked["fingerprint"] != record["fingerprint"]:
                    have = record_name(record) if record else "vectors added from Python"
                    raise ValueError(f"gallery {folder} holds features of {have}; --reid {reid} ({record_name(asked)}) "
                                     "gives features that do not compare with them: drop --reid to use the "
                                     "gallery's own model, or give another --gallery")
            embedder = gallery_embedder(gallery, runtime="onnxruntime", spinning=False)
        except BaseException:
            gallery.close()
            raise
        return gallery, embedder
    spec = ModelSpec.parse(reid or "default")
    embedder = resolve_embedder(spec, runtime="onnxruntime", spinning=False)
    record = spec.record(embedder.preprocess, embedder.flip)
    return Gallery.create(folder, record_name(record), embedder.dim, model_spec=record), embedder


@dataclass
class IngestResult:
    """What an :func:`add_images` did."""

    added: int = 0
    already_present: int = 0  # files whose path the gallery already holds (skipped)
    failed: list[str] = field(default_factory=list)  # why each unreadable image was skipped
    runtime: Optional[str] = None  # what ran the model (None: nothing needed embedding)


def add_images(gallery: Gallery, paths: Sequence[Path], metadata: Optional[Mapping[Path, dict]] = None,
               chunk: int = 1024, batch_size: int = 32, device: str = "cpu",
               progress: Optional[Callable[[int], None]] = None) -> IngestResult:
    """Embed image files with the gallery's model and add them, one transaction per ``chunk``
    images, so an interrupted add keeps what it committed. Metadata per image: camera, frame,
    person read from Market/Duke-style names, overridden by ``metadata`` (keyed by resolved
    path, e.g. from a CSV), plus ``source`` (the resolved path). Files the gallery already holds
    (same path) are skipped, so the same add run again adds only what is missing. ``progress``
    is called with the number of files dealt with (skipped ones included)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    metadata = metadata or {}
    present = gallery.sources_present([str(Path(p).resolve()) for p in paths])
    todo = [Path(p) for p in paths if str(Path(p).resolve()) not in present]
    result = IngestResult(already_present=len(present))
    if progress is not None and present:
        progress(len(present))
    if not todo:
        return result
    embedder = gallery_embedder(gallery, len(todo), batch_size, device)
    result.runtime = embedder.runtime
    for start in range(0, len(todo), chunk):
        part = todo[start:start + chunk]
        feats, ok, bad = embedder.embed_files(part, progress=progress)
        result.failed += [reason for _, reason in bad]
        metas = [{**metadata_from_name(part[i]), **metadata.get(part[i].resolve(), {}), "source": str(part[i].resolve())}
                 for i in ok]
        result.added += len(gallery.add(feats, metas, model=gallery.model))
    return result


def embed_query(gallery: Gallery, query: Path):
    """(1, D) feature of the person in the image file ``query``, by the gallery's model."""
    if not Path(query).is_file():
        raise FileNotFoundError(f"query image not found: {query}")
    feats, _, failed = gallery_embedder(gallery).embed_files([query])
    if failed:
        raise ValueError(failed[0][1])
    return feats


def search_image(gallery: Gallery, query: Path, top_k: int = 10, filters: Optional[Filters] = None,
                 rerank: bool = False, aqe: bool = False) -> list[Hit]:
    """The gallery's ``top_k`` items nearest to the person in the image file ``query``."""
    return gallery.search(embed_query(gallery, query), top_k, filters, rerank=rerank, aqe=aqe)[0]


def search_image_identities(gallery: Gallery, query: Path, top_k: int = 10,
                            filters: Optional[Filters] = None) -> list[IdentityHit]:
    """The ``top_k`` cross-camera identities nearest to the person in ``query`` (items without an
    identity stand for themselves)."""
    return gallery.search_identities(embed_query(gallery, query), top_k, filters)[0]
