"""Which model a command runs: the one place that turns what a user named (a config with its
checkpoint, a checkpoint alone, an ONNX file, or nothing: the shipped default) into a model or
an :class:`~reidkit.inference.Embedder`, and a gallery's model record back into the same Embedder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

from .embedder import Embedder
from .model_id import model_spec, spec_name

logger = logging.getLogger(__name__)
WEIGHTS_HOW = "--weights CHECKPOINT (or MODEL.WEIGHTS CHECKPOINT)"


class ModelChangedError(ValueError):
    """The model files a record names no longer give the features it was made with."""


def load_model(config_file: Optional[Path], opts: Sequence[str] = (), weights: Optional[Path] = None,
               how: str = WEIGHTS_HOW):
    """(model in eval mode, config, weights path): a config with its weights (``weights``, else its
    MODEL.WEIGHTS), a reidkit checkpoint alone, or the shipped default model. ``how`` tells the
    user how the command takes weights."""
    from ..checkpoint import model_from_checkpoint, model_from_config
    from ..config import load_config
    from ..weights import default_weights

    opts = list(opts)
    if config_file is not None:
        cfg = load_config(config_file, opts, freeze=False)
        weights = weights or (Path(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else None)
        if weights is None:
            raise ValueError(f"{config_file} describes a model to load: give its {how}")
        return (*model_from_config(cfg, weights), Path(weights))
    if opts:
        raise ValueError(f"config overrides {' '.join(opts)} need --config-file")
    weights = weights or default_weights()
    return (*model_from_checkpoint(weights), Path(weights))


def build_embedder(config_file: Optional[Path] = None, opts: Sequence[str] = (), onnx: Optional[Path] = None, *,
                   weights: Optional[Path] = None, preprocess: str = "loader", flip: bool = False,
                   batch_size: int = 32, device: str = "cpu", runtime: str = "torch",
                   spinning: bool = True) -> Embedder:
    """The Embedder a command asked for: an ONNX file, a config + weights, a checkpoint, or the
    shipped default; torch models run in ``runtime`` (see ``embedder.runtime_for``)."""
    common = {"preprocess": preprocess, "flip": flip, "batch_size": batch_size}
    if onnx is not None:
        if config_file is not None or opts or weights is not None:
            raise ValueError("give either --onnx or a torch model (--config-file/--opts/--weights), not both")
        if not Path(onnx).is_file():
            raise FileNotFoundError(f"ONNX model not found: {onnx}")
        return Embedder.from_onnx(onnx, spinning=spinning, **common)
    how = "MODEL.WEIGHTS CHECKPOINT (after --opts)"
    if runtime == "onnxruntime" and str(device) == "cpu":
        return _cached_onnx_embedder(config_file, opts, weights, how, spinning, common)
    model, cfg, weights = load_model(config_file, opts, weights, how=how)
    return Embedder.from_model(model, tuple(cfg.INPUT.SIZE_TEST), device=device, runtime=runtime,
                               spinning=spinning, name=weights.name, **common)


def _cached_onnx_embedder(config_file: Optional[Path], opts: Sequence[str], weights: Optional[Path], how: str,
                          spinning: bool, common: dict[str, Any]) -> Embedder:
    """A torch model run by onnxruntime from its kept export (:mod:`.onnx_cache`), exported and
    kept on first use; a model the exporter cannot handle runs in torch, as ``from_model`` does."""
    from .embedder import OnnxRunner
    from .onnx_cache import load_or_export

    spec = model_spec(config_file, list(opts), weights, None, "loader", False)
    name = Path(spec["weights"]).name
    loaded: dict[str, Any] = {}

    def export() -> bytes:
        from ..export.onnx_model import onnx_bytes

        model, cfg, _ = load_model(config_file, opts, weights, how=how)
        loaded["model"], loaded["size"] = model, tuple(cfg.INPUT.SIZE_TEST)
        return onnx_bytes(model, loaded["size"])

    try:
        runner = load_or_export(spec["fingerprint"], export,
                                lambda data: OnnxRunner(data, spinning=spinning, name=name))
    except (RuntimeError, NotImplementedError) as e:  # what torch.onnx raises for ops it cannot export
        if "model" not in loaded:
            raise
        logger.warning("%s: ONNX export failed (%s); running it in torch", name,
                       str(e).splitlines()[0] if str(e) else type(e).__name__)
        return Embedder.from_model(loaded["model"], loaded["size"], runtime="torch", name=name, **common)
    return Embedder(runner, runner.input_size, runner.dim, runtime="onnxruntime", name=name, **common)


def reid_files(value: str) -> tuple[Optional[Path], Optional[Path]]:
    """(checkpoint, ONNX file) that a ``--reid`` value names: ``default`` (both None, the shipped
    model), ``MODEL.onnx`` or a reidkit/fast-reid checkpoint."""
    if value == "default":
        return None, None
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"ReID model not found: {path} (give default, none, MODEL.onnx or a checkpoint)")
    return (None, path) if path.suffix == ".onnx" else (path, None)


def distance_scale_of(value: str) -> float:
    """How much wider than the shipped model's this ``--reid`` model spreads cosine distances, as
    its checkpoint records (``meta["distance_scale"]``, written by `reid adapt`); 1.0 otherwise."""
    from ..checkpoint import load_checkpoint

    weights, _ = reid_files(value) if value not in ("none",) else (None, None)
    if weights is None:
        return 1.0
    meta = load_checkpoint(weights).get("meta") or {}
    return float(meta.get("distance_scale", 1.0))


def record_of(value: str, preprocess: str = "loader", flip: bool = False) -> dict[str, Any]:
    """The model record (``model_id.model_spec``) of a ``--reid`` value."""
    weights, onnx = reid_files(value)
    return model_spec(None, [], weights, onnx, preprocess, flip)


def check_unchanged(record: dict[str, Any], where: str) -> None:
    """A :class:`ModelChangedError` when the files ``record`` names now fingerprint differently."""
    now = model_spec(_path(record.get("config")), record.get("opts", []), _path(record.get("weights")),
                     _path(record.get("onnx")), record.get("preprocess", "loader"), record.get("flip", False))
    if now["fingerprint"] != record["fingerprint"]:
        raise ModelChangedError(f"the model files of {where} changed since it was made ({spec_name(record)}, now "
                                f"{spec_name(now)}): its features would not compare; make a new one")


def embedder_from_record(record: dict[str, Any], where: str, **kwargs) -> Embedder:
    """The Embedder a model record describes, after checking its files did not change; ``kwargs``
    as :func:`build_embedder` (runtime, batch size, device...)."""
    if not record:
        raise ValueError(f"{where} was created from Python with no model recorded: add vectors with Gallery.add")
    check_unchanged(record, where)
    return build_embedder(_path(record.get("config")), record.get("opts", []), _path(record.get("onnx")),
                          weights=_path(record.get("weights")), preprocess=record.get("preprocess", "loader"),
                          flip=record.get("flip", False), **kwargs)


def _path(value: Optional[str]) -> Optional[Path]:
    return Path(value) if value else None
