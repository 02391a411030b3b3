"""The HTTP API over one gallery: embed, search, add, remove, stats, identities, thumbnails.

``create_app(folder, ...)`` builds a FastAPI app (OpenAPI at ``/docs``). One :class:`Gallery`
and its embedder serve every request; they are used under a lock, in FastAPI's thread pool
(every endpoint is a plain function), so the event loop never runs the model.

Security and limits:
- writes (add, delete) need the API key (401 without one, 403 with a wrong one); reads are open
  unless a read key is set (then the read key or the API key);
- uploads larger than ``max_upload`` bytes are refused (413) before they are decoded; images
  are checked by decoding them with reidkit's one decoder, which refuses decompression bombs
  by their header (:data:`reidkit.images.MAX_PIXELS`), not by their name or content type (422);
- thumbnails are served by item id from the gallery's own records, never from a path in the URL;
- errors are JSON ``{"detail": ...}`` with a status code; CORS is off.
"""

from __future__ import annotations

import hmac
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, File, Form, Header, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ..retrieval import Filters, Gallery, GalleryError

#: Largest upload accepted, bytes (a phone photo is 2-5 MB).
MAX_UPLOAD = 10 * 2 ** 20
#: Items one add request may carry.
MAX_ITEMS = 64


class ServiceError(Exception):
    """An error with an HTTP status code, returned as JSON."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Metrics:
    """Request counts and latencies per route, in Prometheus' text format."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, float("inf"))

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            counts = self.latency.setdefault(route, [0] * len(self.BUCKETS))
            for k, edge in enumerate(self.BUCKETS):
                if seconds <= edge:
                    counts[k] += 1
            self.latency_sum[route] = self.latency_sum.get(route, 0.0) + seconds

    def text(self, gallery_items: int) -> str:
        lines = ["# HELP reidkit_requests_total HTTP requests by route, method and status.",
                 "# TYPE reidkit_requests_total counter"]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                lines.append(f'reidkit_requests_total{{route="{route}",method="{method}",status="{status}"}} {n}')
            lines += ["# HELP reidkit_request_seconds Request latency by route.",
                      "# TYPE reidkit_request_seconds histogram"]
            for route, counts in sorted(self.latency.items()):
                for edge, n in zip(self.BUCKETS, counts):
                    le = "+Inf" if edge == float("inf") else f"{edge:g}"
                    lines.append(f'reidkit_request_seconds_bucket{{route="{route}",le="{le}"}} {n}')
                lines.append(f'reidkit_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}')
                lines.append(f'reidkit_request_seconds_count{{route="{route}"}} {counts[-1]}')
        lines += ["# HELP reidkit_gallery_items Items in the gallery.", "# TYPE reidkit_gallery_items gauge",
                  f"reidkit_gallery_items {gallery_items}"]
        return "\n".join(lines) + "\n"


class GalleryService:
    """The gallery, its embedder and the rules the endpoints share (thread-safe by one lock)."""

    def __init__(self, folder: Path, api_key: Optional[str] = None, read_key: Optional[str] = None,
                 max_upload: int = MAX_UPLOAD):
        from ..pipeline.ingest import gallery_embedder

        self.folder = Path(folder)
        self.gallery = Gallery.open(self.folder, threads=True)
        self.embedder = gallery_embedder(self.gallery, runtime="onnxruntime")
        self.api_key, self.read_key, self.max_upload = api_key, read_key, max_upload
        self.lock = threading.Lock()  # the gallery
        self.embed_lock = threading.Lock()  # the embedder
        self.metrics = Metrics()
        self.tmp = tempfile.TemporaryDirectory(prefix="reidkit-serve-")

    def close(self) -> None:
        with self.lock:
            self.gallery.close()
        self.tmp.cleanup()

    # -- access ---------------------------------------------------------------------------------
    def check_write(self, key: Optional[str]) -> None:
        if self.api_key is None:
            raise ServiceError(403, "this server takes no writes: start it with --api-key (or REIDKIT_API_KEY)")
        self._check(key, [self.api_key])

    def check_read(self, key: Optional[str]) -> None:
        if self.read_key is not None:
            self._check(key, [self.read_key] + ([self.api_key] if self.api_key else []))

    @staticmethod
    def _check(key: Optional[str], allowed: list[str]) -> None:
        if not key:
            raise ServiceError(401, "missing API key: send it in the X-API-Key header")
        if not any(hmac.compare_digest(key.encode(), k.encode()) for k in allowed):
            raise ServiceError(403, "wrong API key")

    # -- images ---------------------------------------------------------------------------------
    def embed_upload(self, data: bytes, name: str = "upload") -> np.ndarray:
        """(1, D) feature of an uploaded image, decoded by reidkit's decoder (422 when it is not one)."""
        if len(data) > self.max_upload:
            raise ServiceError(413, f"{name}: {len(data)} bytes, more than the limit of {self.max_upload}")
        if not data:
            raise ServiceError(422, f"{name}: empty upload")
        with tempfile.NamedTemporaryFile(dir=self.tmp.name, suffix=".img") as f:
            f.write(data)
            f.flush()
            with self.embed_lock:
                feats, _, failed = self.embedder.embed_files([f.name])
        if failed:
            reason = failed[0][1].replace(f.name, name)
            raise ServiceError(422, f"not an image reidkit can decode: {reason}")
        return feats

    # -- gallery --------------------------------------------------------------------------------
    def search(self, query: np.ndarray, top_k: int, filters: Filters) -> list[dict[str, Any]]:
        if not 1 <= top_k <= 1000:
            raise ServiceError(422, f"top_k must be in 1..1000, got {top_k}")
        with self.lock:
            if not len(self.gallery):
                return []
            hits = self.gallery.search(query, top_k, filters)[0]
        return [self.hit_json(h.to_dict()) for h in hits]

    @staticmethod
    def hit_json(hit: dict[str, Any]) -> dict[str, Any]:
        hit = {**hit, "thumbnail_url": f"/v1/thumbnails/{hit['id']}"}
        source = hit.pop("source", None)
        hit["file_name"] = Path(source).name if source else None  # never the server's paths
        return hit

    def thumbnail(self, item: int) -> bytes:
        """A JPEG of the item's own recorded source image, at most 256 px high."""
        import io

        from PIL import Image

        from ..images import ImageReadError, read_image

        with self.lock:
            meta = self.gallery.metadata([item]).get(item)
        if meta is None:
            raise ServiceError(404, f"no item {item}")
        if not meta.get("source"):
            raise ServiceError(404, f"item {item} has no image")
        try:
            rgb = read_image(meta["source"])
        except ImageReadError:
            raise ServiceError(404, f"item {item}: its image is no longer readable") from None
        im = Image.fromarray(rgb)
        im.thumbnail((256, 256))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        return buf.getvalue()


def create_app(folder: str | Path, api_key: Optional[str] = None, read_key: Optional[str] = None,
               max_upload: int = MAX_UPLOAD):
    """The FastAPI app serving the gallery in ``folder`` (module docstring)."""
    service = GalleryService(Path(folder), api_key, read_key, max_upload)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="reidkit", description=f"Person re-identification search over {folder}",
                  version="1", lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(ServiceError)
    def _service_error(request: Request, exc: ServiceError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(GalleryError)
    def _gallery_error(request: Request, exc: GalleryError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        start = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > service.max_upload + 64 * 1024:
            response = JSONResponse({"detail": f"request of {length} bytes, more than the limit of "
                                               f"{service.max_upload}"}, status_code=413)
        else:
            response = await call_next(request)
        service.metrics.observe(route_of(app, request.scope), request.method, response.status_code,
                                time.perf_counter() - start)
        return response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        """The search page (:mod:`.page`)."""
        from .page import PAGE

        return PAGE

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness: the gallery answers."""
        with service.lock:
            return {"status": "ok", "items": len(service.gallery)}

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus text: requests, latencies, gallery size."""
        with service.lock:
            items = len(service.gallery)
        return service.metrics.text(items)

    @app.get("/v1/gallery/stats")
    def stats(x_api_key: Optional[str] = Header(None)) -> dict:
        """Items, cameras with their counts, time span, identities, model and index."""
        service.check_read(x_api_key)
        with service.lock:
            info = service.gallery.info()
        return {k: v for k, v in info.items() if k not in ("folder", "model_spec")}

    @app.post("/v1/embed")
    def embed(image: UploadFile = File(...), x_api_key: Optional[str] = Header(None)) -> dict:
        """The ReID feature of the person in an image."""
        service.check_read(x_api_key)
        feats = service.embed_upload(image.file.read(service.max_upload + 1), image.filename or "image")
        return {"dim": int(feats.shape[1]), "vector": feats[0].tolist()}

    @app.post("/v1/search")
    async def search(request: Request, x_api_key: Optional[str] = Header(None)) -> dict:
        """Nearest gallery items to a query: multipart ``image`` (+ form fields) or JSON
        ``{"vector": [...], "top_k": 10, "cameras": [...], "since": s, "until": s}``."""
        service.check_read(x_api_key)
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form(max_part_size=service.max_upload)
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise ServiceError(422, "multipart search needs a file field `image`")
            data = await upload.read()
            params = {k: form.getlist(k) if k == "cameras" else form.get(k) for k in form if k != "image"}
            query = await run_in_threadpool(service.embed_upload, data, upload.filename or "image")
        elif kind.startswith("application/json"):
            try:
                params = await request.json()
            except ValueError:
                raise ServiceError(422, "body is not JSON") from None
            if not isinstance(params, dict) or "vector" not in params:
                raise ServiceError(422, 'JSON search needs {"vector": [...]}')
            query = np.asarray(params.pop("vector"), np.float32)[None]
        else:
            raise ServiceError(415, f"send multipart/form-data with an image, or JSON with a vector (got {kind!r})")
        try:
            top_k = int(params.get("top_k") or 10)
            cameras = params.get("cameras") or None
            if isinstance(cameras, str):
                cameras = [cameras]
            filters = Filters(cameras=cameras, since=_number(params.get("since")), until=_number(params.get("until")))
        except (TypeError, ValueError) as e:
            raise ServiceError(422, f"bad search parameter: {e}") from None
        hits = await run_in_threadpool(service.search, query, top_k, filters)
        return {"hits": hits}

    @app.post("/v1/gallery/items")
    def add_items(images: list[UploadFile] = File(...), camera: Optional[str] = Form(None),
                  timestamp: Optional[float] = Form(None), track_id: Optional[int] = Form(None),
                  person_id: Optional[int] = Form(None), x_api_key: Optional[str] = Header(None)) -> dict:
        """Add images (one metadata set for all of them); needs the API key."""
        service.check_write(x_api_key)
        if len(images) > MAX_ITEMS:
            raise ServiceError(413, f"{len(images)} images in one request, more than {MAX_ITEMS}")
        feats, stored = [], []
        for upload in images:  # every image is checked before anything is written
            data = upload.file.read(service.max_upload + 1)
            feats.append(service.embed_upload(data, upload.filename or "image"))
            stored.append((upload.filename or "image", data))
        saved = []
        for name, data in stored:
            saved.append(save_upload(service.folder / "uploads", name, data))
        meta = [{"camera": camera, "timestamp": timestamp, "track_id": track_id, "person_id": person_id,
                 "source": str(path)} for path in saved]
        with service.lock:
            ids = service.gallery.add(np.concatenate(feats), meta, model=service.gallery.model)
            service.gallery.flush()
        return {"ids": [int(i) for i in ids]}

    @app.delete("/v1/gallery/items/{item}")
    def remove_item(item: int, x_api_key: Optional[str] = Header(None)) -> dict:
        """Remove one item; needs the API key."""
        service.check_write(x_api_key)
        with service.lock:
            removed = service.gallery.remove([item])
            service.gallery.flush()
        if not removed:
            raise ServiceError(404, f"no item {item}")
        return {"removed": item}

    @app.get("/v1/identities/{identity}")
    def identity(identity: int, x_api_key: Optional[str] = Header(None)) -> dict:
        """Every appearance of one cross-camera identity, in time order."""
        service.check_read(x_api_key)
        with service.lock:
            hits = service.gallery.identity(identity)
        if not hits:
            raise ServiceError(404, f"no identity {identity} (run `reid track --gallery` or `reid mtmc --gallery`)")
        items = [service.hit_json({k: v for k, v in h.to_dict().items() if k != "score"}) for h in hits]
        return {"identity_id": identity, "cameras": sorted({i["camera"] for i in items if i.get("camera")}),
                "appearances": items}

    @app.get("/v1/thumbnails/{item}")
    def thumbnail(item: int, x_api_key: Optional[str] = Header(None)):
        """A small JPEG of a gallery item's image."""
        service.check_read(x_api_key)
        return Response(service.thumbnail(item), media_type="image/jpeg")

    return app


def route_of(app, scope) -> str:
    """The path template of the route a request is for (``unmatched``: none), a bounded label."""
    from starlette.routing import Match

    for route in app.router.routes:
        if route.matches(scope)[0] == Match.FULL:
            return getattr(route, "path", "unmatched")
    return "unmatched"


def _number(value) -> Optional[float]:
    if value is None or value == "":
        return None
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{value!r} is not a finite number")
    return out


def save_upload(folder: Path, name: str, data: bytes) -> Path:
    """Keep an added image in the gallery's ``uploads`` folder under a fresh name (atomically)."""
    import uuid

    from ..fileio import atomic_write

    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp") \
        else ".img"
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    atomic_write(path, lambda f: f.write(data))
    return path.resolve()
