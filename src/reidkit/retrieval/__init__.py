"""Vector storage and search: ``VectorIndex`` engines (faiss, Milvus) and the SQLite-backed ``Gallery``."""

from .exact_index import ExactIndex
from .factory import build_index, choose_kind
from .faiss_index import FaissIndex
from .gallery import Filters, Gallery, GalleryError, Hit
from .index import IndexFileError, VectorIndex, open_index

__all__ = ["ExactIndex", "build_index", "choose_kind", "FaissIndex", "Filters", "Gallery", "GalleryError", "Hit", "IndexFileError", "VectorIndex", "open_index"]
