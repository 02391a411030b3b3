"""Association of tracklets into identities: across time in one camera and across cameras.

``tracklets`` (what a `reid track` run gives association), ``associate`` (distances, cannot-links,
topology, clustering), ``metrics`` (pairwise precision / recall / F1, purity), ``clustering``
(constrained average linkage). numpy only.
"""

from .associate import Topology, Transition, associate, calibrated_threshold, cannot_links
from .clustering import cannot_link_overlaps, constrained_agglomerative
from .metrics import pairwise_scores
from .tracklets import TrackletRecord, read_track_output, tracklet_feature

__all__ = ["Topology", "TrackletRecord", "Transition", "associate", "calibrated_threshold", "cannot_link_overlaps",
           "cannot_links", "constrained_agglomerative", "pairwise_scores", "read_track_output", "tracklet_feature"]
