"""Saving and loading model checkpoints (reidkit's and fast-reid's format)."""

from .io import (CheckpointError, atomic_save, load_checkpoint, load_model_weights, model_from_checkpoint,
                 model_from_config)

__all__ = ["CheckpointError", "atomic_save", "load_checkpoint", "load_model_weights", "model_from_checkpoint",
           "model_from_config"]
