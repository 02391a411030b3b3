"""Association of tracklets into identities: across time in one camera and across cameras.

``tracklets`` (what a `reid track` run gives association), ``topology`` (camera transitions and
travel times), ``pairs`` (distances, cannot-links), ``associate`` (calibration, clustering or
closed-world matching), ``blocking`` (the same per component of the close pairs, for large sets),
``online`` (tracklets matched against a gallery's identities as they finish), ``metrics``
(pairwise precision / recall / F1, purity), ``clustering`` (constrained average linkage).
numpy and scipy (faiss for the range search of ``blocking``).
"""

from .associate import Topology, Transition, associate, calibrated_threshold, cannot_links
from .clustering import cannot_link_overlaps, constrained_agglomerative
from .metrics import pairwise_scores
from .tracklets import TrackletRecord, read_track_output, tracklet_feature

__all__ = ["Topology", "TrackletRecord", "Transition", "associate", "calibrated_threshold", "cannot_link_overlaps",
           "cannot_links", "constrained_agglomerative", "pairwise_scores", "read_track_output", "tracklet_feature"]
