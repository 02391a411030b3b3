"""Per-camera tracking: Kalman motion model, assignment, the tracker and its tracklets."""

from .kalman import KalmanBoxFilter
from .tracker import Track, Tracker, TrackerConfig, Tracklet

__all__ = ["KalmanBoxFilter", "Track", "Tracker", "TrackerConfig", "Tracklet"]
