"""``reid serve``: search a gallery over HTTP (an API with OpenAPI docs at /docs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from .common import user_errors


@user_errors
def serve(
    folder: Path = typer.Argument(..., help="The gallery folder (from `reid gallery create` or `reid track --gallery`)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="Key that writes (adding and removing items) "
                                                                 "need, in the X-API-Key header; default "
                                                                 "$REIDKIT_API_KEY. Without one, writes are off."),
    read_key: Optional[str] = typer.Option(None, "--read-key", help="Key that reads need too (default: reads are "
                                                                   "open)."),
    max_batch: int = typer.Option(16, "--max-batch", min=1, help="Most concurrent requests one model call and one "
                                                                 "gallery pass take (1: no batching)."),
) -> None:
    """Serve a gallery over HTTP: embed, search, add, remove, identities (API docs at /docs)."""
    import uvicorn

    from ..retrieval import Gallery
    from ..serve import create_app

    Gallery.open(folder).close()  # a missing or broken gallery is a one-line error before the server starts
    import faiss

    # The requests' threads and the model's own already use the cores: OpenMP workers spinning
    # beside them made each gallery search slower (55.7 against 49.6 searches/s in bench_serve).
    faiss.omp_set_num_threads(1)
    app = create_app(folder, api_key or os.environ.get("REIDKIT_API_KEY") or None, read_key, max_batch=max_batch)
    typer.echo(f"serving {folder} on http://{host}:{port} (API docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
