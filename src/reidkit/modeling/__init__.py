"""Models that turn an image into a feature vector: backbones, heads, losses, meta-architectures."""

from .baseline import Baseline, build_model

__all__ = ["Baseline", "build_model"]
