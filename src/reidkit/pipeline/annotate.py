"""Drawing tracks on frames: a box and id per person, and a trail of where they walked."""

from __future__ import annotations

from collections import defaultdict, deque
from pathlib import Path
from typing import Optional

import numpy as np


def id_colour(track_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per id (golden-ratio hue steps)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((track_id * 0.618033988749895) % 1.0, 0.85, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


class VideoAnnotator:
    """Writes an MP4 of the frames with each confirmed track's box, id and trail."""

    def __init__(self, path: str | Path, fps: float, size_wh: tuple[int, int], trail: int = 30):
        import cv2

        self.cv2 = cv2
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp.mp4")
        self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), size_wh)
        if not self.writer.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot write MP4 video here")
        self.trails: dict[int, deque] = defaultdict(lambda: deque(maxlen=trail))

    def write(self, frame_rgb: np.ndarray, tracks: list[tuple[int, np.ndarray]], frame_number: int,
              label: Optional[str] = None) -> np.ndarray:
        """Draw ``(id, xyxy)`` tracks on a copy of the frame and append it; returns the BGR picture."""
        cv2 = self.cv2
        img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
        for track_id, box in tracks:
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            colour = id_colour(track_id)
            self.trails[track_id].append(((x1 + x2) // 2, y2))
            pts = np.array(self.trails[track_id], np.int32)
            if len(pts) > 1:
                cv2.polylines(img, [pts], False, colour, 2, cv2.LINE_AA)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            text = str(track_id)
            (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 2)
            cv2.rectangle(img, (x1, y1 - th - 6), (x1 + tw + 4, y1), colour, -1)
            cv2.putText(img, text, (x1 + 2, y1 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2, cv2.LINE_AA)
        caption = f"frame {frame_number}" + (f"  {label}" if label else "")
        cv2.putText(img, caption, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        self.writer.write(img)
        return img

    def close(self) -> Path:
        """Finish the file and move it into place (a reader never sees a half-written video)."""
        import os

        self.writer.release()
        os.replace(self.tmp, self.path)
        return self.path
