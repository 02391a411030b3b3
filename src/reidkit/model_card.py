"""The model card: what anyone using a set of ReID weights must know, written once with them.

Like timm's pretrained configs, but stored inside the file: a reidkit checkpoint keeps the card's
fields in its ``meta`` dict, an ONNX export in its metadata as JSON under ``reidkit.card``. Every
``Embedder.from_*`` reads it (input size, resizing, flip, dimension), the gallery fingerprint
hashes it with the weights, and tools that drop the classifier find it by ``classifier_key``.
Files written before cards existed get one from their config and state dict.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Optional

#: Where the classifier of reidkit's and fast-reid's BNNeck head lives in a state dict.
CLASSIFIER_KEY = "heads.weight"
ONNX_KEY = "reidkit.card"
PREPROCESSING = ("loader", "demo")


@dataclass(frozen=True)
class ModelCard:
    """How to feed a ReID model and what it gives back.

    ``input_size`` is (height, width); crops are resized to it by ``preprocess`` (``loader``: PIL
    bicubic, fast-reid's evaluation loader; ``demo``: OpenCV bicubic) and fed as RGB 0-255 floats,
    from which the model subtracts ``pixel_mean`` and divides by ``pixel_std`` itself. ``flip``:
    features are meant to be averaged with the mirror image's. ``distance_scale``: how much wider
    than the shipped model's its cosine distances spread (the tracker's thresholds divide by it).
    """

    input_size: tuple[int, int]
    dim: int
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    preprocess: str = "loader"
    flip: bool = False
    classifier_key: Optional[str] = CLASSIFIER_KEY
    distance_scale: float = 1.0
    license: str = ""
    training: str = ""
    train_datasets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        h, w = self.input_size
        if int(h) <= 0 or int(w) <= 0 or int(self.dim) <= 0:
            raise ValueError(f"model card: input_size {self.input_size} and dim {self.dim} must be positive")
        if self.preprocess not in PREPROCESSING:
            raise ValueError(f"model card: preprocess {self.preprocess!r}: expected one of {', '.join(PREPROCESSING)}")
        if len(self.pixel_mean) != 3 or len(self.pixel_std) != 3 or min(self.pixel_std) <= 0:
            raise ValueError(f"model card: pixel_mean {self.pixel_mean} and pixel_std {self.pixel_std} need 3 "
                             "values each, std positive")
        if not self.distance_scale > 0:
            raise ValueError(f"model card: distance_scale must be > 0, got {self.distance_scale}")

    # -- checkpoints ------------------------------------------------------------------------
    def to_meta(self) -> dict[str, Any]:
        """The card as checkpoint ``meta`` keys (lists for tuples, as YAML/JSON readers expect)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out["embedding_dim" if f.name == "dim" else f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], where: str, state: Optional[Mapping[str, Any]] = None,
                  cfg=None) -> "ModelCard":
        """The card in a checkpoint's ``meta``; fields it lacks (files older than cards) come from
        ``cfg`` (its config) and ``state`` (whether it has a classifier)."""
        known = {f.name for f in fields(cls)}
        values = {("dim" if k == "embedding_dim" else k): v for k, v in meta.items()
                  if ("dim" if k == "embedding_dim" else k) in known}
        if cfg is not None:
            values.setdefault("input_size", list(cfg.INPUT.SIZE_TEST))
            values.setdefault("pixel_mean", list(cfg.MODEL.PIXEL_MEAN))
            values.setdefault("pixel_std", list(cfg.MODEL.PIXEL_STD))
            values.setdefault("flip", bool(cfg.TEST.FLIP.ENABLED))
            values.setdefault("train_datasets", list(cfg.DATASETS.NAMES))
            if "dim" not in values and cfg.MODEL.HEADS.EMBEDDING_DIM:
                values["dim"] = int(cfg.MODEL.HEADS.EMBEDDING_DIM)
        if state is not None and "classifier_key" not in values and CLASSIFIER_KEY not in state:
            values["classifier_key"] = None
        return cls._build(values, where)

    # -- ONNX metadata ----------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> "ModelCard":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: its model card ({ONNX_KEY}) is not JSON: {e}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{where}: its model card ({ONNX_KEY}) is not a JSON object")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{where}: model card fields {', '.join(sorted(unknown))} are unknown to this reidkit")
        return cls._build(values, where)

    @classmethod
    def _build(cls, values: dict[str, Any], where: str) -> "ModelCard":
        missing = [k for k in ("input_size", "dim") if k not in values]
        if missing:
            raise ValueError(f"{where}: its model card lacks {', '.join(missing)} (and no config says it)")
        try:
            values["input_size"] = tuple(int(v) for v in values["input_size"])
            values["dim"] = int(values["dim"])
            for key in ("pixel_mean", "pixel_std"):
                if key in values:
                    values[key] = tuple(float(v) for v in values[key])
            if "train_datasets" in values:
                values["train_datasets"] = tuple(str(v) for v in values["train_datasets"])
            if "distance_scale" in values:
                values["distance_scale"] = float(values["distance_scale"])
            return cls(**values)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: bad model card: {e}") from None
