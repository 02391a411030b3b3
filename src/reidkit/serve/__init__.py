"""``reid serve``: an HTTP API over a gallery (FastAPI)."""

from .app import create_app

__all__ = ["create_app"]
