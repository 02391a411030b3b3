"""Pedestrian detectors behind one ``Detector`` interface (``detect(frame) -> Detections``)."""

from .base import Detections, Detector
from .ssdlite import SSDLiteDetector

__all__ = ["Detections", "Detector", "SSDLiteDetector"]
