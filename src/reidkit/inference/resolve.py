"""Which model a command runs: the one place that turns what a user named into a model or an
:class:`~reidkit.inference.Embedder`.

A :class:`ModelSpec` says what was named: an ONNX file, a config (fast-reid's or ours) with its
weights, a reidkit checkpoint alone, or nothing (the shipped default). ``resolve_embedder(spec)``
builds it through the ``EMBEDDERS`` registry, one builder per kind; ``spec.record()`` is what a
gallery keeps to rebuild the same Embedder later and to notice changed files (a fingerprint).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..model_card import ModelCard
from ..registry import Registry
from .embedder import Embedder

logger = logging.getLogger(__name__)
WEIGHTS_HOW = "--weights CHECKPOINT (or MODEL.WEIGHTS CHECKPOINT)"

EMBEDDERS: Registry = Registry(
    "ReID model kind", "build(spec: ModelSpec, runtime, device, batch_size, spinning) -> Embedder whose "
    "`card` describes the weights; chosen by `ModelSpec.kind`", where="--reid / --onnx / --config-file / --weights")


class ModelChangedError(ValueError):
    """The model files a record names no longer give the features it was made with."""


@dataclass(frozen=True)
class ModelSpec:
    """A ReID model as a user names it. At most one of ``onnx`` and (``config``, ``weights``);
    nothing means the shipped default. ``preprocess`` and ``flip`` None: as the model card says."""

    config: Optional[Path] = None
    opts: tuple[str, ...] = ()
    weights: Optional[Path] = None
    onnx: Optional[Path] = None
    preprocess: Optional[str] = None
    flip: Optional[bool] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "opts", tuple(self.opts))
        if self.onnx is not None and (self.config is not None or self.opts or self.weights is not None):
            raise ValueError("give either --onnx or a torch model (--config-file/--opts/--weights), not both")
        if self.opts and self.config is None:
            raise ValueError(f"config overrides {' '.join(self.opts)} need --config-file")

    @property
    def kind(self) -> str:
        """The ``EMBEDDERS`` entry that builds it: onnx, config, checkpoint or default."""
        if self.onnx is not None:
            return "onnx"
        if self.config is not None:
            return "config"
        return "checkpoint" if self.weights is not None else "default"

    @classmethod
    def parse(cls, value: str, preprocess: Optional[str] = None, flip: Optional[bool] = None) -> "ModelSpec":
        """A ``--reid`` value: ``default`` (the shipped model), ``MODEL.onnx`` or a checkpoint."""
        if value == "default":
            return cls(preprocess=preprocess, flip=flip)
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"ReID model not found: {path} (give default, none, MODEL.onnx or a checkpoint)")
        if path.suffix == ".onnx":
            return cls(onnx=path, preprocess=preprocess, flip=flip)
        return cls(weights=path, preprocess=preprocess, flip=flip)

    @classmethod
    def from_record(cls, record: dict[str, Any], where: str) -> "ModelSpec":
        """The spec a gallery's model record names (see :meth:`record`)."""
        if not record:
            raise ValueError(f"{where} was created from Python with no model recorded: add vectors with Gallery.add")
        return cls(_path(record.get("config")), tuple(record.get("opts", [])), _path(record.get("weights")),
                   _path(record.get("onnx")), record.get("preprocess", "loader"), record.get("flip", False))

    # -- the record a gallery keeps -------------------------------------------------------
    def weights_file(self) -> Path:
        """The file holding the weights (ONNX file, checkpoint, or the shipped default)."""
        from ..config import load_config
        from ..weights import default_weights

        if self.onnx is not None:
            return self.onnx
        chosen = self.weights
        if self.config is not None and chosen is None:
            cfg = load_config(self.config, list(self.opts))
            chosen = Path(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else None
            if chosen is None:
                raise ValueError(f"{self.config} describes a model to load: give its --weights CHECKPOINT "
                                 "(or MODEL.WEIGHTS CHECKPOINT after --opts)")
        return Path(chosen or default_weights())

    def record(self, preprocess: str = "loader", flip: bool = False) -> dict[str, Any]:
        """Absolute paths and settings that rebuild this model's Embedder, and a fingerprint:
        SHA-256 of the files and settings its features depend on. The model card is inside the
        hashed weights file (or comes from the hashed, merged config), so the fingerprint covers
        card and weights. ``preprocess``/``flip``: what the Embedder actually used."""
        from ..config import load_config

        preprocess = self.preprocess or preprocess
        flip = self.flip if self.flip is not None else flip
        rec: dict[str, Any] = {"config": None, "opts": list(self.opts), "weights": None, "onnx": None,
                               "preprocess": preprocess, "flip": flip}
        h = hashlib.sha256(json.dumps([list(self.opts), preprocess, flip]).encode())
        if self.config is not None:
            rec["config"] = str(self.config.resolve())
            h.update(load_config(self.config, list(self.opts)).dump().encode())  # _BASE_ files included
        weights = self.weights_file()
        rec["onnx" if self.onnx is not None else "weights"] = str(weights.resolve())
        if not weights.is_file():
            raise FileNotFoundError(f"model file not found: {weights}")
        with open(weights, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        rec["fingerprint"] = h.hexdigest()[:16]
        return rec


def record_name(record: dict[str, Any]) -> str:
    """A model record in a few characters: file name and fingerprint."""
    return f"{Path(record['onnx'] or record['weights']).name}@{record['fingerprint'][:12]}"


def resolve_embedder(spec: ModelSpec | str | None = None, *, runtime: str = "torch", device: str = "cpu",
                     batch_size: int = 32, spinning: bool = True) -> Embedder:
    """The Embedder ``spec`` names (a :class:`ModelSpec`, a ``--reid`` string, or None: the
    shipped default). Torch models run in ``runtime``; on CPU, onnxruntime runs a kept export
    (:mod:`.onnx_cache`) so later runs start without torch."""
    if spec is None or isinstance(spec, str):
        spec = ModelSpec.parse(spec or "default")
    return EMBEDDERS.get(spec.kind)(spec, runtime=runtime, device=device, batch_size=batch_size, spinning=spinning)


def load_model(spec: ModelSpec, how: str = WEIGHTS_HOW):
    """(model in eval mode, config, weights path, model card) of a torch ``spec``: a config with
    its weights (``spec.weights``, else its MODEL.WEIGHTS), a reidkit checkpoint alone, or the
    shipped default model. ``how`` tells the user how the command takes weights."""
    from ..checkpoint import checkpoint_card, load_checkpoint, model_from_checkpoint, model_from_config
    from ..config import load_config
    from ..weights import default_weights

    if spec.onnx is not None:
        raise ValueError(f"{spec.onnx} is an ONNX model: this command needs the torch model (a checkpoint)")
    if spec.config is not None:
        cfg = load_config(spec.config, list(spec.opts), freeze=False)
        weights = spec.weights or (Path(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else None)
        if weights is None:
            raise ValueError(f"{spec.config} describes a model to load: give its {how}")
        model, cfg = model_from_config(cfg, weights)
        card = checkpoint_card(load_checkpoint(weights), str(weights), cfg, model.embedding_dim, config_decides=True)
    else:
        weights = spec.weights or default_weights()
        model, cfg = model_from_checkpoint(weights)
        card = checkpoint_card(load_checkpoint(weights), str(weights), cfg, model.embedding_dim)
    return model, cfg, Path(weights), card


def _common(spec: ModelSpec, card: Optional[ModelCard], batch_size: int) -> dict[str, Any]:
    """Embedder settings: what the spec says, else what the card says."""
    preprocess = spec.preprocess or (card.preprocess if card else "loader")
    flip = spec.flip if spec.flip is not None else (card.flip if card else False)
    return {"preprocess": preprocess, "flip": flip, "batch_size": batch_size}


@EMBEDDERS.register("onnx")
def _onnx_embedder(spec: ModelSpec, runtime: str, device: str, batch_size: int, spinning: bool) -> Embedder:
    if not spec.onnx.is_file():
        raise FileNotFoundError(f"ONNX model not found: {spec.onnx}")
    given = {k: getattr(spec, k) for k in ("preprocess", "flip") if getattr(spec, k) is not None}
    return Embedder.from_onnx(spec.onnx, spinning=spinning, batch_size=batch_size, **given)  # the rest: its card


def _torch_embedder(spec: ModelSpec, runtime: str, device: str, batch_size: int, spinning: bool) -> Embedder:
    how = "MODEL.WEIGHTS CHECKPOINT (after --opts)"
    if runtime == "onnxruntime" and str(device) == "cpu":
        return _cached_onnx_embedder(spec, how, spinning, batch_size)
    model, cfg, weights, card = load_model(spec, how=how)
    return Embedder.from_model(model, card.input_size, device=device, runtime=runtime, spinning=spinning,
                               name=weights.name, card=card, **_common(spec, card, batch_size))


for _kind in ("config", "checkpoint", "default"):
    EMBEDDERS.add(_kind, _torch_embedder)


def _cached_onnx_embedder(spec: ModelSpec, how: str, spinning: bool, batch_size: int) -> Embedder:
    """A torch model run by onnxruntime from its kept export (:mod:`.onnx_cache`), exported and
    kept on first use; a model the exporter cannot handle runs in torch, as ``from_model`` does."""
    from .embedder import OnnxRunner
    from .onnx_cache import load_or_export

    record = spec.record()
    name = Path(record["weights"]).name
    loaded: dict[str, Any] = {}

    def export() -> bytes:
        from .onnx_graph import onnx_bytes

        model, cfg, _, card = load_model(spec, how=how)
        loaded.update(model=model, card=card)
        return onnx_bytes(model, card.input_size, card=card)

    try:
        runner = load_or_export(record["fingerprint"], export,
                                lambda data: OnnxRunner(data, spinning=spinning, name=name))
    except (RuntimeError, NotImplementedError) as e:  # what torch.onnx raises for ops it cannot export
        if "model" not in loaded:
            raise
        logger.warning("%s: ONNX export failed (%s); running it in torch", name,
                       str(e).splitlines()[0] if str(e) else type(e).__name__)
        card = loaded["card"]
        return Embedder.from_model(loaded["model"], card.input_size, runtime="torch", name=name, card=card,
                                   **_common(spec, card, batch_size))
    return Embedder(runner, runner.input_size, runner.dim, runtime="onnxruntime", name=name, card=runner.card,
                    **_common(spec, runner.card, batch_size))


def distance_scale_of(spec: ModelSpec | str) -> float:
    """How much wider than the tracker's thresholds assume the model spreads cosine distances, as
    its card says (``distance_scale``: the shipped model's, or written by `reid adapt`); 1.0 for
    cards that do not say."""
    from ..checkpoint import checkpoint_card, load_checkpoint
    from .embedder import OnnxRunner

    spec = ModelSpec.parse(spec) if isinstance(spec, str) else spec
    if spec.onnx is not None:
        card = OnnxRunner(spec.onnx, spinning=False).card
        return card.distance_scale if card else 1.0
    if spec.kind == "default":
        from ..weights import default_weights

        spec = ModelSpec(weights=default_weights())
    if spec.weights is None:
        return 1.0
    meta = load_checkpoint(spec.weights).get("meta") or {}
    return float(meta.get("distance_scale", 1.0))


def check_unchanged(record: dict[str, Any], where: str) -> None:
    """A :class:`ModelChangedError` when the files ``record`` names now fingerprint differently."""
    now = ModelSpec.from_record(record, where).record()
    if now["fingerprint"] != record["fingerprint"]:
        raise ModelChangedError(f"the model files of {where} changed since it was made ({record_name(record)}, now "
                                f"{record_name(now)}): its features would not compare; make a new one")


def embedder_from_record(record: dict[str, Any], where: str, **kwargs) -> Embedder:
    """The Embedder a model record describes, after checking its files did not change; ``kwargs``
    as :func:`resolve_embedder` (runtime, batch size, device...)."""
    spec = ModelSpec.from_record(record, where)
    check_unchanged(record, where)
    return resolve_embedder(spec, **kwargs)


def _path(value: Optional[str]) -> Optional[Path]:
    return Path(value) if value else None


__all__ = ["EMBEDDERS", "ModelChangedError", "ModelSpec", "WEIGHTS_HOW", "check_unchanged", "distance_scale_of",
           "embedder_from_record", "load_model", "record_name", "resolve_embedder"]
