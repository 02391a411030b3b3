"""Running a ReID model over images: ``Embedder`` (torch or ONNX), preprocessing, feature files."""

from .embedder import Embedder
from .files import expand_inputs, parse_ids, save_features
from .preprocess import ImageReadError

__all__ = ["Embedder", "expand_inputs", "parse_ids", "save_features", "ImageReadError"]
