"""PNG figures of retrieval results: rank lists, the verification ROC, distance histograms.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state, no display).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from ..evaluation.roc import RocCurve

CORRECT, WRONG, QUERY, NEUTRAL = "#1a9850", "#d73027", "#3060c0", "#808080"


@dataclass(frozen=True)
class RankedItem:
    """One gallery entry in a query's rank list."""

    path: str
    distance: float
    camera: str  # the camera as shown under the picture ("cam 3", "lobby")
    correct: Optional[bool]  # None: not known (no labels), drawn neutral


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _thumbnail(path: str | Path, size: tuple[int, int] = (64, 128)) -> np.ndarray:
    """The image at ``path`` resized to ``size`` (w, h); a grey tile when it cannot be read."""
    from ..images import ImageReadError, read_image

    try:
        return np.asarray(Image.fromarray(read_image(path)).resize(size, Image.BILINEAR))
    except ImageReadError:
        return np.full((size[1], size[0], 3), 200, np.uint8)


def _framed(ax, image: np.ndarray, colour: str, title: str) -> None:
    ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(4)
    ax.set_title(title, fontsize=8, color=colour)


def rank_list_png(query_path: str | Path, query_camera: str, ranked: Sequence[RankedItem], title: str = "") -> bytes:
    """The query and its top-k gallery images; green frames are the same person, red another,
    grey unknown."""
    fig = _figure(1.0 * (len(ranked) + 1) + 0.3, 2.6 if "\n" not in title else 2.8)
    axes = fig.subplots(1, len(ranked) + 1, squeeze=False)[0]
    _framed(axes[0], _thumbnail(query_path), QUERY, f"query\n{query_camera}")
    for i, (ax, item) in enumerate(zip(axes[1:], ranked), start=1):
        colour = NEUTRAL if item.correct is None else CORRECT if item.correct else WRONG
        _framed(ax, _thumbnail(item.path), colour,
                f"#{i} d={item.distance:.3f}\n{item.camera}")
    if title:
        fig.suptitle(title, fontsize=9)
    top = 0.85 if not title else 0.78 if "\n" not in title else 0.72
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=top, wspace=0.08)
    return _png(fig)


def roc_png(curve: RocCurve, n_genuine: int, n_impostor: int) -> bytes:
    """Verification ROC: genuine pairs accepted (TAR) against impostor pairs accepted (FAR), log x."""
    far, tar = 1 - curve.tpr, 1 - curve.fpr  # fast-reid's curve has impostors as the positive class
    fig = _figure(5, 4)
    ax = fig.subplots()
    keep = far > 0
    ax.plot(far[keep], tar[keep], color=QUERY, lw=2)
    ax.set_xscale("log")
    ax.set_xlim(max(far[keep].min(), 1e-6) if keep.any() else 1e-6, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false accept rate (impostor pairs under the threshold)")
    ax.set_ylabel("true accept rate (genuine pairs)")
    ax.set_title(f"ROC over {n_genuine} genuine / {n_impostor} impostor pairs", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def distance_histogram_png(genuine: np.ndarray, impostor: np.ndarray) -> bytes:
    """Distributions of genuine and impostor pair distances (densities, shared bins)."""
    fig = _figure(5, 3.5)
    ax = fig.subplots()
    lo = float(min(genuine.min(), impostor.min()))
    hi = float(max(genuine.max(), impostor.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 60)
    ax.hist(impostor, bins=bins, density=True, alpha=0.6, color=WRONG, label=f"different people ({impostor.size})")
    ax.hist(genuine, bins=bins, density=True, alpha=0.6, color=CORRECT, label=f"same person ({genuine.size})")
    ax.set_xlabel("distance")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)
