"""Backbones, registered by fast-reid's MODEL.BACKBONE.NAME values."""

from . import efficientnet_lite, resnet  # noqa: F401
