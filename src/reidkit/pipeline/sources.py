"""Frames from a video file or a folder of images, numbered from 1 as MOTChallenge numbers them.

Problems do not stop a run: a video that ends early (truncated or damaged) stops with what was
read and says so in ``problems``; an unreadable image in a folder is skipped and listed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class FrameSource:
    """Iterate ``(frame_number, rgb_frame)``; ``fps`` and ``frame_count`` when known."""

    fps: float = 25.0
    frame_count: Optional[int] = None
    name: str = ""
    size: Optional[tuple[int, int]] = None  # (width, height) when known before the first frame

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError


class VideoSource(FrameSource):
    def __init__(self, path: str | Path, stride: int = 1, start: int = 1, limit: Optional[int] = None):
        import cv2

        super().__init__()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video not found: {self.path}")
        if stride < 1 or start < 1:
            raise ValueError(f"stride and start must be >= 1, got {stride}, {start}")
        self.cap = cv2.VideoCapture(str(self.path))
        if not self.cap.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot open it as a video (corrupt, or an unsupported codec)")
        self.cv2, self.stride, self.start, self.limit = cv2, stride, start, limit
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 25.0) / stride
        count = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count > 0 and start > count:
            self.cap.release()
            raise ValueError(f"--start {start} is past the end of {self.path} ({count} frames)")
        self.header_frames = count  # what the header announces (0: unknown)
        self.frame_count = None
        if count > 0:  # what this run will read, for progress bars
            self.frame_count = len(range(start, count + 1, stride))
            if limit is not None:
                self.frame_count = min(self.frame_count, limit)
        self.name = self.path.stem

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        number, yielded = 0, 0
        while self.limit is None or yielded < self.limit:
            ok, bgr = self.cap.read()
            if not ok:
                break
            number += 1
            if number < self.start or (number - self.start) % self.stride:
                continue
            yielded += 1
            yield number, self.cv2.cvtColor(bgr, self.cv2.COLOR_BGR2RGB)
        if number == 0:
            self.cap.release()
            raise ValueError(f"{self.path}: no frame could be decoded (not a video OpenCV reads, or damaged)")
        if self.header_frames and number < self.header_frames and (self.limit is None or yielded < self.limit):
            self.problems.append(f"{self.path}: the video ended at frame {number} of the {self.header_frames} "
                                 "its header announces (truncated or damaged); results cover what was read")
        self.cap.release()


class FolderSource(FrameSource):
    """Images in a folder, sorted by name; numbered by the digits in their names when every name
    has some (MOTChallenge ``img1/000001.jpg``), else 1, 2, 3..."""

    def __init__(self, folder: str | Path, stride: int = 1, start: int = 1, limit: Optional[int] = None,
                 fps: float = 25.0):
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"frames folder not found: {self.folder}")
        files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{self.folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        digits = [re.findall(r"\d+", p.stem) for p in files]
        numbers = [int(d[-1]) for d in digits] if all(digits) else list(range(1, len(files) + 1))
        if len(set(numbers)) != len(numbers):
            numbers = list(range(1, len(files) + 1))
        pairs = sorted(zip(numbers, files))
        if pairs[-1][0] < start:
            raise ValueError(f"--start {start} is past the last frame of {self.folder} (frame {pairs[-1][0]})")
        pairs = [(n, f) for n, f in pairs if n >= start][::stride]
        self.frames = pairs[:limit] if limit is not None else pairs
        self.frame_count, self.fps, self.name = len(self.frames), fps / stride, self.folder.name

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        from ..inference.preprocess import ImageReadError, read_image

        for number, path in self.frames:
            try:
                yield number, read_image(path, "demo")
            except ImageReadError as e:
                self.problems.append(f"skipped frame {number}: {e}")


def open_source(path: str | Path, stride: int = 1, start: int = 1, limit: Optional[int] = None) -> FrameSource:
    """A video file or a frames folder."""
    path = Path(path)
    if path.is_dir():
        return FolderSource(path, stride, start, limit)
    return VideoSource(path, stride, start, limit)


class NoFrames(FrameSource):
    """Frame numbers without pictures, for tracking public detections alone (see :func:`frames_near`)."""

    def __init__(self, numbers: Sequence[int], fps: float = 25.0, name: str = "detections",
                 size: Optional[tuple[int, int]] = None):
        super().__init__()
        self.numbers = [int(n) for n in numbers]
        self.frame_count, self.fps, self.name = len(self.numbers), fps, name
        self.size = size

    def __iter__(self) -> Iterator[tuple[int, Optional[np.ndarray]]]:
        for number in self.numbers:
            yield number, None


def frames_near(detection_frames: Sequence[int], horizon: int, start: int = 1, stride: int = 1,
                limit: Optional[int] = None) -> list[int]:
    """The frames a tracker has to see when only detections are given: each frame with detections
    and the ``horizon`` frames after it (by then every track has ended), as ``start``, ``stride``
    and ``limit`` select them. Stretches with nobody in them are skipped, so a detections file
    whose frame numbers jump to a billion costs no more than one without the jump."""
    if stride < 1 or start < 1:
        raise ValueError(f"stride and start must be >= 1, got {stride}, {start}")
    last = None if limit is None else start + limit * stride - 1
    wanted: list[int] = []
    reach = 0  # frames up to here are already listed
    for d in sorted(set(int(f) for f in detection_frames)):
        lo, hi = max(d, reach + 1, start), d + horizon
        if last is not None:
            hi = min(hi, last)
        wanted.extend(f for f in range(lo, hi + 1) if (f - start) % stride == 0)
        reach = max(reach, d + horizon)
    return wanted
