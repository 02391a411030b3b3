"""Which model made a set of features: a record that rebuilds the embedder and detects changes.

A gallery stores this record so that features added later come from the same model: absolute
paths of the config/weights/ONNX file, the config overrides and preprocessing, and a fingerprint
(SHA-256) of the files and settings the features depend on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional


def _file_digest(path: Path, h) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)


def model_spec(config_file: Optional[Path], opts: list[str], weights: Optional[Path], onnx: Optional[Path],
               preprocess: str, flip: bool) -> dict[str, Any]:
    """What rebuilds the gallery's embedder later, with absolute paths and a fingerprint of the
    files and settings its features depend on (so a changed model file is caught)."""
    from ..config import load_config
    from ..weights import default_weights

    spec: dict[str, Any] = {"config": None, "opts": list(opts), "weights": None, "onnx": None,
                            "preprocess": preprocess, "flip": flip}
    h = hashlib.sha256(json.dumps([opts, preprocess, flip]).encode())
    if onnx is not None:
        spec["onnx"] = str(onnx.resolve())
        files = [onnx]
    else:
        chosen = weights
        if config_file is not None:
            spec["config"] = str(config_file.resolve())
            cfg = load_config(config_file, opts)
            h.update(cfg.dump().encode())  # the merged config (its _BASE_ files included)
            chosen = chosen or (Path(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else None)
            if chosen is None:
                raise ValueError(f"{config_file} describes a model to load: give its --weights CHECKPOINT "
                                 "(or MODEL.WEIGHTS CHECKPOINT after --opts)")
        elif opts:
            raise ValueError(f"config overrides {' '.join(opts)} need --config-file")
        chosen = chosen or default_weights()
        spec["weights"] = str(Path(chosen).resolve())
        files = [Path(chosen)]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"model file not found: {f}")
        _file_digest(f, h)
    spec["fingerprint"] = h.hexdigest()[:16]
    return spec


def spec_name(spec: dict[str, Any]) -> str:
    return f"{Path(spec['onnx'] or spec['weights']).name}@{spec['fingerprint'][:12]}"
