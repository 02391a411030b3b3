"""The HTTP API over one gallery: embed, search, add, remove, stats, identities, thumbnails.

``create_app(folder, ...)`` builds a FastAPI app (OpenAPI at ``/docs``). One :class:`Gallery`
and its embedder serve every request, in FastAPI's thread pool (the event loop never runs the
model): each request decodes its image in its own thread, then the model and the gallery search
run in batches of the requests waiting (:mod:`.batching`); the gallery is used under one lock.

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
from .batching import Batcher

#: Largest upload accepted, bytes (a phone photo is 2-5 MB).
MAX_UPLOAD = 10 * 2 ** 20
#: Items one add request may carry.
MAX_ITEMS = 64
#: Most crops in one model call, and queries in one gallery pass, under concurrent requests.
MAX_BATCH = 16


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

    def text(self, gallery_items: int, batches: Optional[dict[str, dict[int, int]]] = None) -> str:
        """The metrics, the gallery's size and, per batching stage, how many batches of each size ran."""
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
        if batches:
            lines += ["# HELP reidkit_batches_total Model calls and gallery passes, by stage and batch size.",
                      "# TYPE reidkit_batches_total counter"]
            for stage, sizes in sorted(batches.items()):
                for size, n in sorted(sizes.items()):
                    lines.append(f'reidkit_batches_total{{stage="{stage}",size="{size}"}} {n}')
        return "\n".join(lines) + "\n"


class GalleryService:
    """The gallery, its embedder and the rules the endpoints share (thread-safe by one lock)."""

    def __init__(self, folder: Path, api_key: Optional[str] = None, read_key: Optional[str] = None,
                 max_upload: int = MAX_UPLOAD, max_batch: int = MAX_BATCH):
        from ..pipeline.ingest import gallery_embedder

        self.folder = Path(folder)
        self.gallery = Gallery.open(self.folder, threads=True)
        # Idle onnxruntime threads sleep: spinning ones would steal the cores that decoding,
        # HTTP parsing and the gallery search need between model calls.
        self.embedder = gallery_embedder(self.gallery, runtime="onnxruntime", spinning=False)
        self.api_key, self.read_key, self.max_upload = api_key, read_key, max_upload
        self.lock = threading.Lock()  # the gallery
        self.metrics = Metrics()
        self.model_batches = Batcher(lambda crops: self.embedder.embed_prepared(np.stack(crops)), max_batch,
                                     name="reidkit-model")
        self.search_batches = Batcher(self._search_batch, max_batch, name="reidkit-search")

    def close(self) -> None:
        self.model_batches.close()
        self.search_batches.close()
        with self.lock:
            self.gallery.close()

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
    def prepare_upload(self, data: bytes, name: str = "upload", box: Optional[str] = None) -> np.ndarray:
        """An uploaded image decoded by reidkit's decoder (422 when it is not one), cut to ``box``
        (``x1,y1,x2,y2`` in its pixels) when given, and resized for the model."""
        from ..images import ImageReadError
        from ..inference.preprocess import read_image_bytes

        if len(data) > self.max_upload:
            raise ServiceError(413, f"{name}: {len(data)} bytes, more than the limit of {self.max_upload}")
        if not data:
            raise ServiceError(422, f"{name}: empty upload")
        try:
            rgb = read_image_bytes(data, self.embedder.preprocess, name)
        except ImageReadError as e:
            raise ServiceError(422, f"not an image reidkit can decode: {e}") from None
        if box:
            rgb = crop(rgb, box, name)
        return self.embedder.prepare(rgb)

    def embed_upload(self, data: bytes, name: str = "upload", box: Optional[str] = None) -> np.ndarray:
        """(1, D) feature of an uploaded image (:meth:`prepare_upload`), the model run in a batch
        with the other requests waiting for it."""
        return self.model_batches.submit(self.prepare_upload(data, name, box))[None]

    def search_upload(self, data: bytes, name: str, box: Optional[str], top_k: int,
                      filters: Filters) -> list[dict[str, Any]]:
        """:meth:`search` with the feature of an uploaded image (one trip to the thread pool)."""
        return self.search(self.embed_upload(data, name, box), top_k, filters)

    # -- gallery --------------------------------------------------------------------------------
    def search(self, query: np.ndarray, top_k: int, filters: Filters) -> list[dict[str, Any]]:
        """The hits of one query, searched together with the other queries waiting."""
        from ..retrieval.vectors import as_vectors

        if not 1 <= top_k <= 1000:
            raise ServiceError(422, f"top_k must be in 1..1000, got {top_k}")
        try:
            query = as_vectors(query, self.gallery.dim, "query vector")
        except ValueError as e:
            raise ServiceError(422, str(e)) from None
        if len(query) != 1:
            raise ServiceError(422, f"one query vector per search, got {len(query)}")
        return self.search_batches.submit((query, top_k, filters))

    def _search_batch(self, jobs: list[tuple[np.ndarray, int, Filters]]) -> list:
        """Hits of many queries: one gallery search per distinct filter, at the largest top_k asked
        (each job keeps its own first top_k; a job whose search fails gets its error)."""
        groups: dict[tuple, list[int]] = {}
        for i, (_, _, filters) in enumerate(jobs):
            where, args = filters.sql()
            groups.setdefault((where, tuple(args)), []).append(i)
        out: list = [None] * len(jobs)
        with self.lock:
            empty = not len(self.gallery)
            for members in groups.values():
                if empty:
                    for i in members:
                        out[i] = []
                    continue
                k = max(jobs[i][1] for i in members)
                try:
                    found = self.gallery.search(np.concatenate([jobs[i][0] for i in members]), k, jobs[members[0]][2])
                except GalleryError as e:
                    for i in members:
                        out[i] = e
                    continue
                for i, hits in zip(members, found):
                    out[i] = [self.hit_json(h.to_dict()) for h in hits[:jobs[i][1]]]
        return out

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
               max_upload: int = MAX_UPLOAD, max_batch: int = MAX_BATCH):
    """The FastAPI app serving the gallery in ``folder`` (module docstring); ``max_batch=1`` turns
    batching off."""
    service = GalleryService(Path(folder), api_key, read_key, max_upload, max_batch)

    @asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="reidkit", description=f"Person re-identification search over {folder}",
                  version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    mount_docs(app)

    @app.exception_handler(ServiceError)
    def _service_error(request: Request, exc: ServiceError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(GalleryError)
    def _gallery_error(request: Request, exc: GalleryError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    app.add_middleware(MeasureAndLimit, service=service)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        """The search page (:mod:`.page`)."""
        from .page import PAGE

        return PAGE

    @app.get("/gallery", response_class=HTMLResponse, include_in_schema=False)
    def gallery_page() -> str:
        """The gallery page: counts per camera (:mod:`.page`)."""
        from .page import GALLERY_PAGE

        return GALLERY_PAGE

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
        return service.metrics.text(items, {"model": dict(service.model_batches.batch_sizes),
                                            "search": dict(service.search_batches.batch_sizes)})

    @app.get("/v1/gallery/stats")
    def stats(x_api_key: Optional[str] = Header(None)) -> dict:
        """Items, cameras with their counts, time span, identities, model and index."""
        service.check_read(x_api_key)
        with service.lock:
            info = service.gallery.info()
        return {k: v for k, v in info.items() if k not in ("folder", "model_spec")}

    @app.post("/v1/embed")
    def embed(image: UploadFile = File(...), box: Optional[str] = Form(None),
              x_api_key: Optional[str] = Header(None)) -> dict:
        """The ReID feature of the person in an image (or in its region ``box`` = ``x1,y1,x2,y2``)."""
        service.check_read(x_api_key)
        feats = service.embed_upload(image.file.read(service.max_upload + 1), image.filename or "image", box)
        return {"dim": int(feats.shape[1]), "vector": feats[0].tolist()}

    @app.post("/v1/search")
    async def search(request: Request, x_api_key: Optional[str] = Header(None)) -> JSONResponse:
        """Nearest gallery items to a query: multipart ``image`` (+ form fields, ``box`` =
        ``x1,y1,x2,y2`` for a region of it) or JSON
        ``{"vector": [...], "top_k": 10, "cameras": [...], "since": s, "until": s}``;
        answers ``{"hits": [{"id", "score", "camera", "timestamp", ...}]}``."""
        service.check_read(x_api_key)
        kind = request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            form = await request.form(max_part_size=service.max_upload)
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise ServiceError(422, "multipart search needs a file field `image`")
            data = await upload.read()
            params = {k: form.getlist(k) if k == "cameras" else form.get(k) for k in form if k != "image"}
            top_k, filters = search_parameters(params)
            hits = await run_in_threadpool(service.search_upload, data, upload.filename or "image",
                                           params.get("box") or None, top_k, filters)
        elif kind.startswith("application/json"):
            try:
                params = await request.json()
            except ValueError:
                raise ServiceError(422, "body is not JSON") from None
            if not isinstance(params, dict) or "vector" not in params:
                raise ServiceError(422, 'JSON search needs {"vector": [...]}')
            try:
                query = np.asarray(params.pop("vector"), np.float32)
            except (TypeError, ValueError):
                raise ServiceError(422, '"vector" must be a list of numbers') from None
            top_k, filters = search_parameters(params)
            hits = await run_in_threadpool(service.search, query, top_k, filters)
        else:
            raise ServiceError(415, f"send multipart/form-data with an image, or JSON with a vector (got {kind!r})")
        # a response built here skips FastAPI's generic encoder: these are plain JSON types already
        return JSONResponse({"hits": hits})

    @app.post("/v1/gallery/items")
    def add_items(images: list[UploadFile] = File(...), camera: Optional[str] = Form(None),
                  timestamp: Optional[float] = Form(None), track_id: Optional[int] = Form(None),
                  person_id: Optional[int] = Form(None), x_api_key: Optional[str] = Header(None)) -> dict:
        """Add images (one metadata set for all of them); needs the API key."""
        service.check_write(x_api_key)
        if len(images) > MAX_ITEMS:
            raise ServiceError(413, f"{len(images)} images in one request, more than {MAX_ITEMS}")
        crops, stored = [], []
        for upload in images:  # every image is checked before anything is written
            data = upload.file.read(service.max_upload + 1)
            crops.append(service.prepare_upload(data, upload.filename or "image"))
            stored.append((upload.filename or "image", data))
        feats = service.embedder.embed_prepared(np.stack(crops))  # one call (onnxruntime runs are thread-safe)
        saved = []
        for name, data in stored:
            saved.append(save_upload(service.folder / "uploads", name, data))
        meta = [{"camera": camera, "timestamp": timestamp, "track_id": track_id, "person_id": person_id,
                 "source": str(path)} for path in saved]
        with service.lock:
            ids = service.gallery.add(feats, meta, model=service.gallery.model)
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


def mount_docs(app) -> None:
    """OpenAPI's Swagger UI at ``/docs``, from the files of the ``swagger-ui-bundle`` wheel
    (Apache-2.0) instead of the CDN FastAPI's own page loads them from."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/static/swagger-ui", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="reidkit API",
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")


def route_of(app, scope) -> str:
    """The path template of the route a request is for (``unmatched``: none), a bounded label."""
    from starlette.routing import Match

    for route in app.router.routes:
        if route.matches(scope)[0] == Match.FULL:
            return getattr(route, "path", "unmatched")
    return "unmatched"


class MeasureAndLimit:
    """ASGI middleware: refuses a request whose declared body is over the upload limit (413,
    before it is read) and counts every request with its latency for ``/metrics``. Plain ASGI,
    not ``@app.middleware``, which costs a task and a stream copy per request."""

    def __init__(self, app, service: GalleryService):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length", b"")
            limit = self.service.max_upload + 64 * 1024
            if length.isdigit() and int(length) > limit:
                refused = JSONResponse({"detail": f"request of {int(length)} bytes, more than the limit of "
                                                  f"{self.service.max_upload}"}, status_code=413)
                await refused(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.service.metrics.observe(route_of(scope["app"], scope), scope["method"], status[0],
                                         time.perf_counter() - start)


def search_parameters(params: dict) -> tuple[int, Filters]:
    """``top_k`` and the filters of a search's form fields or JSON keys (422 when malformed)."""
    try:
        top_k = int(params.get("top_k") or 10)
        cameras = params.get("cameras") or None
        if isinstance(cameras, str):
            cameras = [cameras]
        return top_k, Filters(cameras=cameras, since=_number(params.get("since")), until=_number(params.get("until")))
    except (TypeError, ValueError) as e:
        raise ServiceError(422, f"bad search parameter: {e}") from None


def _number(value) -> Optional[float]:
    if value is None or value == "":
        return None
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"{value!r} is not a finite number")
    return out


def crop(rgb: np.ndarray, box: str, name: str = "image") -> np.ndarray:
    """The region ``x1,y1,x2,y2`` (pixels, clipped to the image) of an image; 422 when it is not one."""
    try:
        x1, y1, x2, y2 = (float(v) for v in box.split(","))
    except ValueError:
        raise ServiceError(422, f"box {box!r}: expected x1,y1,x2,y2 in pixels") from None
    h, w = rgb.shape[:2]
    if not all(np.isfinite([x1, y1, x2, y2])):
        raise ServiceError(422, f"box {box!r}: not finite numbers")
    x1, x2 = (int(round(min(max(v, 0), w))) for v in (x1, x2))
    y1, y2 = (int(round(min(max(v, 0), h))) for v in (y1, y2))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise ServiceError(422, f"box {box!r}: covers less than 2x2 pixels of {name} ({w}x{h})")
    return rgb[y1:y2, x1:x2]


def save_upload(folder: Path, name: str, data: bytes) -> Path:
    """Keep an added image in the gallery's ``uploads`` folder under a fresh name (atomically)."""
    import uuid

    from ..fileio import atomic_write

    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp") \
        else ".img"
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    atomic_write(path, lambda f: f.write(data))
    return path.resolve()
