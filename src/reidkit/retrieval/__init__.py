"""Vector storage and search: ``VectorIndex`` engines (faiss, Milvus) and the SQLite-backed ``Gallery``."""

from .faiss_index import FaissIndex
from .gallery import Filters, Gallery, GalleryError, Hit
from .index import IndexFileError, VectorIndex, open_index

__all__ = ["FaissIndex", "Filters", "Gallery", "GalleryError", "Hit", "IndexFileError", "VectorIndex", "open_index"]
