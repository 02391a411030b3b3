"""Association of tracklets into identities: across time in one camera and across cameras."""

from .clustering import cannot_link_overlaps, constrained_agglomerative

__all__ = ["cannot_link_overlaps", "constrained_agglomerative"]
