"""The detector and ReID model a pipeline run uses, from short names (``reid track``, the demo,
the benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..detection.base import Detections

DetectFn = Callable[[object, int], Detections]


@dataclass(frozen=True)
class DetectorKind:
    """A ``--detector`` kind: how to build it from its argument (``kind:ARG``), and what it needs."""

    build: Callable[[str, float], tuple[DetectFn, Optional[object]]]  # (detect, MOTDetections or None)
    argument: Optional[str]  # what follows "kind:", or None when the kind takes none
    needs_frames: bool
    help: str


DETECTORS: dict[str, DetectorKind] = {}


def register_detector(name: str, argument: Optional[str], help: str, needs_frames: bool = True):
    """Register a detector kind under ``name`` (the registry ``--detector`` reads)."""
    def wrap(build):
        DETECTORS[name] = DetectorKind(build, argument, needs_frames, help)
        return build
    return wrap


def _per_frame(detector) -> tuple[DetectFn, None]:
    return (lambda frame, number: detector.detect(frame)), None


@register_detector("ssdlite", None, "the bundled SSDLite pedestrian detector (default)")
def _ssdlite(arg: str, score: float):
    from ..detection import SSDLiteDetector

    return _per_frame(SSDLiteDetector(score_threshold=score))


@register_detector("hog", None, "OpenCV's HOG people detector")
def _hog(arg: str, score: float):
    from ..detection.hog import HOGDetector

    return _per_frame(HOGDetector())


@register_detector("onnx", "MODEL.onnx", "a YOLOv5/v8/11-style ONNX export")
def _onnx(arg: str, score: float):
    from ..detection.yolo import YoloOnnxDetector

    return _per_frame(YoloOnnxDetector(arg, score_threshold=score))


@register_detector("yolox", "MODEL.onnx", "a YOLOX ONNX export")
def _yolox(arg: str, score: float):
    from ..detection.yolo import YoloOnnxDetector

    return _per_frame(YoloOnnxDetector(arg, score_threshold=score, style="yolox"))


@register_detector("yolo", "MODEL.pt", "needs the optional, AGPL ultralytics package (.onnx: as onnx:)")
def _yolo(arg: str, score: float):
    from ..detection.yolo import UltralyticsDetector, YoloOnnxDetector

    if arg.endswith(".onnx"):
        return _per_frame(YoloOnnxDetector(arg, score_threshold=score))
    return _per_frame(UltralyticsDetector(arg, score_threshold=score))


@register_detector("mot", "DET.txt", "MOTChallenge public detections; without a video the run is motion-only",
                   needs_frames=False)
def _mot(arg: str, score: float):
    from ..tracking.mot import MOTDetections

    dets = MOTDetections(arg)
    return (lambda frame, number: dets.for_frame(number)), dets


def _usage() -> str:
    return ", ".join(name + (f":{kind.argument}" if kind.argument else "") for name, kind in DETECTORS.items())


DETECTOR_HELP = "; ".join(f"{name}{':' + k.argument if k.argument else ''}: {k.help}" for name, k in DETECTORS.items())


def make_detector(spec: str, score: float, have_frames: bool = True):
    """(detect(frame, number) function, name, MOTDetections or None) for a --detector value."""
    name, _, arg = spec.partition(":")
    kind = DETECTORS.get(name)
    if kind is None or bool(arg) != (kind.argument is not None):
        raise ValueError(f"--detector {spec!r}: expected one of {_usage()}")
    if kind.needs_frames and not have_frames:
        without = ", ".join(f"{n}:{k.argument}" for n, k in DETECTORS.items() if not k.needs_frames)
        raise ValueError(f"give a video or frames folder (only --detector {without} runs without one)")
    detect, public = kind.build(arg, score)
    return detect, (f"{name}:{Path(arg).name}" if arg else name), public


def make_embedder(spec: str, batch_size: int = 32) -> Optional[object]:
    """The ReID model for --reid: default, none, a .onnx file or a reidkit/fast-reid checkpoint.

    Checkpoints (the default model included) run in onnxruntime, exported in memory at start:
    about twice as fast as torch on small batches of crops. Idle onnxruntime threads sleep, as
    the detector runs between batches. A model the exporter cannot handle runs in torch."""
    if spec == "none":
        return None
    from ..inference.resolve import build_embedder, reid_files

    weights, onnx = reid_files(spec)
    return build_embedder(None, [], onnx, weights=weights, batch_size=batch_size, runtime="onnxruntime",
                          spinning=False)
