"""The shipped default model: EfficientNet-Lite0 + BNNeck, ReID-trained on CUHK03 (fp16).

Its recipe is ``configs/CUHK03/lite0_default.yml``; the checkpoint carries its own config, so
``reidkit.checkpoint.model_from_checkpoint(default_weights())`` builds it with nothing else.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "lite0_cuhk03.pth"


def default_weights() -> Path:
    """Path of the shipped default checkpoint; a clear error when the install lacks it."""
    if not DEFAULT_WEIGHTS.is_file():
        raise FileNotFoundError(f"the default model {DEFAULT_WEIGHTS} is missing from this install: "
                                "reinstall reidkit, or pass a checkpoint explicitly")
    return DEFAULT_WEIGHTS
