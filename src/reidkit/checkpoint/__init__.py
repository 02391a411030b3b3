"""Saving and loading model checkpoints (reidkit's and fast-reid's format) and their model cards."""

from .io import (CheckpointError, atomic_save, checkpoint_card, classifier_key, classifier_size, load_checkpoint,
                 load_model_weights, model_from_checkpoint, model_from_config)

__all__ = ["CheckpointError", "atomic_save", "checkpoint_card", "classifier_key", "classifier_size", "load_checkpoint",
           "load_model_weights", "model_from_checkpoint", "model_from_config"]
