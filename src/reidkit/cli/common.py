"""What every subcommand shares: turning expected errors into a one-line message and exit 2."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..config import ConfigError
from ..data.datasets import DatasetError
from ..retrieval.gallery import GalleryError
from ..retrieval.index import IndexFileError

USER_ERRORS = (ConfigError, DatasetError, GalleryError, IndexFileError, FileNotFoundError, ValueError, ConnectionError)


def user_errors(fn: Callable) -> Callable:
    """Report bad input as ``error: ...`` on stderr with exit code 2, without a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return wrapper


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, sort_keys=False)
    sys.stdout.write("\n")


def load_model(config_file: Optional[Path], opts: list[str], weights: Optional[Path] = None,
               how: str = "--weights CHECKPOINT (or MODEL.WEIGHTS CHECKPOINT)"):
    """(model in eval mode, config, weights path) a command asked for: a config with its weights
    (``weights``, else its MODEL.WEIGHTS), a reidkit checkpoint alone, or the shipped default model.
    ``how`` tells the user how this command takes weights."""
    from ..checkpoint import model_from_checkpoint, model_from_config
    from ..config import load_config
    from ..weights import default_weights

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
