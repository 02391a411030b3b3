"""onnxruntime sessions made the same way everywhere (ReID models, detectors)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def ort_session(model: str | Path | bytes, providers: Sequence[str] | None = None, spinning: bool = True,
                threads: int | None = None, name: str = "model"):
    """An ``InferenceSession`` for a file or serialized model: CUDA/TensorRT providers when
    present, else CPU; ``spinning=False`` lets idle threads sleep (better beside other work)."""
    import onnxruntime as ort

    if isinstance(model, (str, Path)):
        if not Path(model).is_file():
            raise FileNotFoundError(f"ONNX model not found: {model}")
        name, model = str(model), str(model)
    available = ort.get_available_providers()
    if providers is None:
        preferred = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in preferred if p in available]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    if not spinning:  # idle threads sleep: spinning ones steal the cores other stages need
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(model, options, providers=list(providers))
    except Exception as e:  # onnxruntime raises its own exception types for invalid graphs
        raise ValueError(f"{name}: onnxruntime cannot load it ({str(e).splitlines()[0]})") from None
