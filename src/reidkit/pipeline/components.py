"""The detector and ReID model a pipeline run uses, from short names (``reid track``, the demo,
the benchmarks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

from ..detection.base import Detections

logger = logging.getLogger(__name__)

DETECTOR_HELP = ("ssdlite (default: the bundled SSDLite pedestrian detector), hog (OpenCV's HOG people "
                 "detector), onnx:MODEL.onnx (a YOLOv5/v8/11-style ONNX export), yolox:MODEL.onnx (a YOLOX "
                 "ONNX export), yolo:MODEL.pt (needs the optional, AGPL ultralytics package), or "
                 "mot:DET.txt (MOTChallenge public detections; without a video the run is motion-only).")

DetectFn = Callable[[object, int], Detections]


def make_detector(spec: str, score: float):
    """(detect(frame, number) function, name, MOTDetections or None) for a --detector value."""
    kind, _, arg = spec.partition(":")
    det = None
    if kind == "ssdlite" and not arg:
        from ..detection import SSDLiteDetector

        det = SSDLiteDetector(score_threshold=score)
    elif kind == "hog" and not arg:
        from ..detection.hog import HOGDetector

        det = HOGDetector()
    elif kind in ("onnx", "yolox") and arg:
        from ..detection.yolo import YoloOnnxDetector

        det = YoloOnnxDetector(arg, score_threshold=score, style="yolox" if kind == "yolox" else "ultralytics")
    elif kind == "yolo" and arg:
        from ..detection.yolo import UltralyticsDetector, YoloOnnxDetector

        det = (YoloOnnxDetector(arg, score_threshold=score) if arg.endswith(".onnx")
               else UltralyticsDetector(arg, score_threshold=score))
    elif kind == "mot" and arg:
        from ..tracking.mot import MOTDetections

        dets = MOTDetections(arg)
        return (lambda frame, number: dets.for_frame(number)), f"mot:{Path(arg).name}", dets
    if det is None:
        raise ValueError(f"--detector {spec!r}: expected ssdlite, hog, onnx:FILE.onnx, yolox:FILE.onnx, "
                         "yolo:FILE.pt or mot:DET.txt")
    name = kind if not arg else f"{kind}:{Path(arg).name}"
    return (lambda frame, number: det.detect(frame)), name, None


def make_embedder(spec: str, batch_size: int = 32) -> Optional[object]:
    """The ReID model for --reid: default, none, a .onnx file or a reidkit/fast-reid checkpoint.

    Checkpoints (the default model included) run in onnxruntime, exported in memory at start:
    about twice as fast as torch on small batches of crops. Idle onnxruntime threads sleep, as
    the detector runs between batches. A model the exporter cannot handle runs in torch."""
    if spec == "none":
        return None
    from ..inference import Embedder

    if spec.endswith(".onnx"):
        return Embedder.from_onnx(Path(spec), spinning=False, batch_size=batch_size)
    if spec == "default":
        from ..weights import default_weights

        checkpoint = default_weights()
    else:
        checkpoint = Path(spec)
        if not checkpoint.is_file():
            raise FileNotFoundError(f"ReID checkpoint not found: {checkpoint}")
    try:
        return Embedder.from_checkpoint(checkpoint, runtime="onnxruntime", spinning=False, batch_size=batch_size)
    except (RuntimeError, NotImplementedError) as e:  # what torch.onnx raises for ops it cannot export
        logger.warning("%s: ONNX export failed (%s); running it in torch", checkpoint, str(e).splitlines()[0])
        return Embedder.from_checkpoint(checkpoint, batch_size=batch_size)
