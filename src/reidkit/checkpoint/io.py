"""Checkpoint files: ``torch.save`` of a dict with ``model`` (a state dict) and, for reidkit's own,
``meta`` (the config and the model card's fields, :mod:`reidkit.model_card`) plus training state.
fast-reid's files (``{"model": ..., "epoch": ...}``) load the same way; their card comes from
the config they are loaded with.

Writes are atomic: a temporary file in the same folder, fsync, then rename.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..fileio import atomic_write
from ..model_card import CLASSIFIER_KEY, ModelCard

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not fit the model."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` that never leaves a half-written file behind."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict (``.xz``-compressed files too); a bare state dict is wrapped as ``{"model": state}``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        if path.suffix == ".xz":
            import io
            import lzma

            obj = torch.load(io.BytesIO(lzma.open(path).read()), map_location="cpu", weights_only=False)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, expected a dict with a 'model' state dict")
    if "model" not in obj:
        obj = {"model": obj}
    return obj


# Older fast-reid releases named the BNNeck differently.
LEGACY_KEYS = {"heads.bnneck.": "heads.bottleneck.0."}


def classifier_key(model: nn.Module) -> Optional[str]:
    """The state-dict key of ``model``'s classifier (what its class declares; None: it has none)."""
    key = getattr(model.module if hasattr(model, "module") else model, "classifier_key", CLASSIFIER_KEY)
    return key if key in model.state_dict() else None


def classifier_size(ckpt: dict[str, Any]) -> Optional[int]:
    """How many identities the checkpoint's classifier was trained on (None: it was dropped)."""
    key = (ckpt.get("meta") or {}).get("classifier_key", CLASSIFIER_KEY)
    head = ckpt["model"].get(key) if key else None
    return None if head is None else int(head.shape[0])


def checkpoint_card(ckpt: dict[str, Any], where: str, cfg=None, dim: Optional[int] = None,
                    config_decides: bool = False) -> ModelCard:
    """The model card of a loaded checkpoint: its own, completed from ``cfg`` and the model's
    ``dim`` for files that predate cards (fast-reid's). ``config_decides``: the checkpoint is
    run with a config the user gave, whose input size and mean/std win over the file's."""
    meta = dict(ckpt.get("meta") or {})
    if config_decides:
        for key in ("input_size", "pixel_mean", "pixel_std"):
            meta.pop(key, None)
    if dim is not None:
        meta.setdefault("embedding_dim", int(dim))
    return ModelCard.from_meta(meta, where, state=ckpt["model"], cfg=cfg)


def load_model_weights(model: nn.Module, path: str | Path, allow_new_classifier: bool = True) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model``. A classifier (the model's ``classifier_key``)
    of another size is left at its initialisation when ``allow_new_classifier``; any other missing
    key or shape difference means a different architecture and is an error naming the first few."""
    ckpt = load_checkpoint(path)
    state = {k.removeprefix("module."): v for k, v in ckpt["model"].items()}
    for old, new in LEGACY_KEYS.items():
        state = {(new + k[len(old):] if k.startswith(old) and not k.startswith(new) else k): v for k, v in state.items()}
    own = model.state_dict()
    key = classifier_key(model)
    theirs = (ckpt.get("meta") or {}).get("classifier_key", CLASSIFIER_KEY)
    if key and theirs and theirs != key and theirs in state:
        state[key] = state.pop(theirs)
    if allow_new_classifier and key and key in state and state[key].shape != own[key].shape:
        logger.info("classifier of %s has %d classes, the model %d: keeping the model's", path,
                    state[key].shape[0], own[key].shape[0])
        state[key] = own[key]
    if allow_new_classifier and key and key not in state:
        state[key] = own[key]  # shipped embedders leave the classifier out
    difference = state_dict_difference(own, state)
    if difference:
        raise CheckpointError(f"checkpoint {path} is for a different architecture than the config's: {difference}")
    model.load_state_dict(state, strict=True)
    return ckpt


def state_dict_difference(own: dict[str, Any], state: dict[str, Any]) -> str:
    """How ``state`` fails to fit a model whose state dict is ``own`` ('' when it fits): keys
    missing or unexpected, and shapes that differ, a few of each."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and getattr(state[k], "shape", None) != own[k].shape]
    parts = []
    if mismatched:
        parts.append(f"shapes differ: {', '.join(mismatched[:3])}")
    if missing:
        parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    return "; ".join(parts)


def model_from_checkpoint(path: str | Path):
    """(model in eval mode, its config) rebuilt from a reidkit checkpoint's own metadata."""
    import yaml

    from ..config import get_cfg
    from ..modeling import build_model

    ckpt = load_checkpoint(path)
    meta = ckpt.get("meta")
    if not meta or "config" not in meta:
        raise CheckpointError(f"{path} carries no config (a fast-reid or bare checkpoint): also give the config file "
                              "it was trained with")
    cfg = get_cfg()
    cfg.merge_from_dict(yaml.safe_load(meta["config"]), source=f"{path} metadata")
    classes = meta.get("num_classes") or classifier_size(ckpt)
    if classes is None:
        raise CheckpointError(f"{path} records neither its number of classes nor a classifier")
    cfg.MODEL.HEADS.NUM_CLASSES = int(classes)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.WEIGHTS = ""
    model = build_model(cfg)
    load_model_weights(model, path)
    return model.eval(), cfg.freeze()


def model_from_config(cfg, weights: str | Path):
    """(model in eval mode, frozen config) for the architecture ``cfg`` describes with ``weights``
    (a reidkit or fast-reid checkpoint) loaded; the classifier size comes from the checkpoint."""
    from ..modeling import build_model

    cfg = cfg.clone().freeze(False)
    classes = classifier_size(load_checkpoint(weights))
    cfg.MODEL.HEADS.NUM_CLASSES = classes if classes is not None else max(1, cfg.MODEL.HEADS.NUM_CLASSES)
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.WEIGHTS = str(weights)
    model = build_model(cfg)
    load_model_weights(model, weights)
    return model.eval(), cfg.freeze()

