"""Deployment formats of a ReID model: ONNX export and its parity check against torch."""

from .onnx_model import export_onnx, max_abs_difference

__all__ = ["export_onnx", "max_abs_difference"]
