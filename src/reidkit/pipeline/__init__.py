"""The video pipeline: frame sources, detection + ReID + tracking per camera, annotated video."""

from .sources import FolderSource, NoFrames, VideoSource, open_source
from .track import TrackingResult, run_tracking

__all__ = ["FolderSource", "NoFrames", "VideoSource", "open_source", "TrackingResult", "run_tracking"]
