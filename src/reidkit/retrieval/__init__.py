"""Vector storage and search: ``VectorIndex`` engines (numpy, faiss, Milvus) and the SQLite-backed ``Gallery``."""

from .engines import INDEX_ENGINES, build_index, choose_kind, open_index
from .exact_index import ExactIndex
from .faiss_index import FaissIndex
from .gallery import Filters, Gallery, GalleryError, Hit, IdentityHit
from .index import IndexFileError, VectorIndex

__all__ = ["ExactIndex", "INDEX_ENGINES", "build_index", "choose_kind", "FaissIndex", "Filters", "Gallery",
           "GalleryError", "Hit", "IdentityHit", "IndexFileError", "VectorIndex", "open_index"]
