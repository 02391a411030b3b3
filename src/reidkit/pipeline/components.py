"""The detector and ReID model a pipeline run uses, from short names (``reid track``, the demo,
the benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..detection.base import Detections
from ..registry import Registry

DetectFn = Callable[[object, int], Detections]


@dataclass(frozen=True)
class DetectorOptions:
    """What every ``--detector`` kind may be given: the score threshold and, for kinds that take
    one, the input size (height, width)."""

    score: float = 0.3
    input_size: Optional[tuple[int, int]] = None


DETECTORS: Registry = Registry(
    "detector", "build(argument, DetectorOptions) -> (detect(frame, number) -> Detections, MOTDetections "
    "or None); declares `argument` (what follows `kind:`, None: takes none), `argument_optional`, "
    "`needs_frames`, `sized` (takes --det-size) and `help`", where="--detector")
DEFAULT_DETECTOR = "yolox"


def register_detector(name: str, argument: Optional[str], help: str, needs_frames: bool = True,
                      argument_optional: bool = False, sized: bool = False):
    """Register a detector kind under ``name``, declaring what ``--detector`` checks before building it."""
    return DETECTORS.register(name, argument=argument, argument_optional=argument_optional,
                              needs_frames=needs_frames, sized=sized, help=help)


def _per_frame(detector) -> tuple[DetectFn, None]:
    return (lambda frame, number: detector.detect(frame)), None


@register_detector("yolox", "MODEL.onnx", "YOLOX-Nano, bundled (the default; Apache-2.0), or your own YOLOX "
                   "ONNX export after the colon", argument_optional=True, sized=True)
def _yolox(arg: str, opts: DetectorOptions):
    from ..detection.yolo import YoloOnnxDetector, bundled_yolox

    return _per_frame(YoloOnnxDetector(arg or bundled_yolox(), score_threshold=opts.score, style="yolox",
                                       input_size=opts.input_size))


@register_detector("ssdlite", None, "the bundled SSDLite pedestrian detector (300x300)")
def _ssdlite(arg: str, opts: DetectorOptions):
    from ..detection import SSDLiteDetector

    return _per_frame(SSDLiteDetector(score_threshold=opts.score))


@register_detector("hog", None, "OpenCV's HOG people detector")
def _hog(arg: str, opts: DetectorOptions):
    from ..detection.hog import HOGDetector

    return _per_frame(HOGDetector())


@register_detector("onnx", "MODEL.onnx", "a YOLOv5/v8/11-style ONNX export", sized=True)
def _onnx(arg: str, opts: DetectorOptions):
    from ..detection.yolo import YoloOnnxDetector

    return _per_frame(YoloOnnxDetector(arg, score_threshold=opts.score, input_size=opts.input_size))


@register_detector("yolo", "MODEL.pt", "needs the optional, AGPL ultralytics package (.onnx: as onnx:)", sized=True)
def _yolo(arg: str, opts: DetectorOptions):
    from ..detection.yolo import UltralyticsDetector, YoloOnnxDetector

    if arg.endswith(".onnx"):
        return _per_frame(YoloOnnxDetector(arg, score_threshold=opts.score, input_size=opts.input_size))
    return _per_frame(UltralyticsDetector(arg, score_threshold=opts.score))


@register_detector("mot", "DET.txt", "MOTChallenge public detections; without a video the run is motion-only",
                   needs_frames=False)
def _mot(arg: str, opts: DetectorOptions):
    from ..tracking.mot import MOTDetections

    dets = MOTDetections(arg)
    return (lambda frame, number: dets.for_frame(number)), dets


def _spelling(name: str) -> str:
    info = DETECTORS.info(name)
    if info["argument"] is None:
        return name
    return f"{name}[:{info['argument']}]" if info["argument_optional"] else f"{name}:{info['argument']}"


def _usage() -> str:
    return ", ".join(_spelling(name) for name in DETECTORS)


DETECTOR_HELP = "; ".join(f"{_spelling(name)}: {DETECTORS.info(name)['help']}" for name in DETECTORS)


def make_detector(spec: str, score: float, have_frames: bool = True, input_size: Optional[tuple[int, int]] = None):
    """(detect(frame, number) function, name, MOTDetections or None) for a --detector value;
    ``input_size`` (height, width) for the kinds that take ``--det-size``."""
    name, _, arg = spec.partition(":")
    info = DETECTORS.info(name) if name in DETECTORS else None
    if info is None or (arg and info["argument"] is None) or (not arg and info["argument"] and not info["argument_optional"]):
        raise ValueError(f"--detector {spec!r}: expected one of {_usage()}")
    if info["needs_frames"] and not have_frames:
        without = ", ".join(_spelling(n) for n in DETECTORS if not DETECTORS.info(n)["needs_frames"])
        raise ValueError(f"give a video or frames folder (only --detector {without} runs without one)")
    if input_size is not None and not info["sized"]:
        sized = ", ".join(n for n in DETECTORS if DETECTORS.info(n)["sized"])
        raise ValueError(f"--det-size applies to the YOLO detectors ({sized}), not to --detector {name}")
    detect, public = DETECTORS.get(name)(arg, DetectorOptions(score, input_size))
    return detect, (f"{name}:{Path(arg).name}" if arg else name), public


def make_embedder(spec: str, batch_size: int = 32) -> Optional[object]:
    """The ReID model for --reid: default, none, a .onnx file or a reidkit/fast-reid checkpoint.

    Checkpoints (the default model included) run in onnxruntime, exported in memory at start:
    about twice as fast as torch on small batches of crops. Idle onnxruntime threads sleep, as
    the detector runs between batches. A model the exporter cannot handle runs in torch."""
    if spec == "none":
        return None
    from ..inference.resolve import resolve_embedder

    return resolve_embedder(spec, batch_size=batch_size, runtime="onnxruntime", spinning=False)
