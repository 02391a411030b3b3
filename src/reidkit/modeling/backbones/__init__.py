"""Backbones, registered by fast-reid's MODEL.BACKBONE.NAME values."""

from . import efficientnet_lite, osnet, resnet  # noqa: F401
