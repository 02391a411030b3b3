"""Small real sample data shipped with the package, so the demo runs offline on a fresh install."""

from __future__ import annotations

from pathlib import Path

MARKET1501_MINI = Path(__file__).resolve().parent / "market1501-mini"
#: Frames 1-200 of PETS09-S2L1 (OpenCV's sample video vtest.avi, 768x576), MPEG-4 in AVI.
PETS09_CLIP = Path(__file__).resolve().parent / "pets09-s2l1-clip.avi"
#: MOTChallenge ground truth of those 200 frames (MOT15's PETS09-S2L1 annotations, CC BY-NC-SA 3.0).
PETS09_CLIP_GT = Path(__file__).resolve().parent / "pets09-s2l1-clip-gt.txt"
