"""``reid track`` (detect, embed and track people in a video) and ``reid track-eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..pipeline.components import DETECTOR_HELP
from .common import print_json, user_errors

@user_errors
def track(
    source: Optional[Path] = typer.Argument(None, help="A video file or a folder of frames (optional with "
                                                         "--detector mot:DET.txt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for tracks.txt, tracklets, crops, tracks.mp4."),
    camera: Optional[str] = typer.Option(None, "--camera", help="Camera name (default: the input's name)."),
    detector: str = typer.Option("ssdlite", "--detector", "-d", help=DETECTOR_HELP),
    reid: str = typer.Option("default", "--reid", "--embedder",
                             help="Appearance model: default, none (motion-only), MODEL.onnx or a checkpoint "
                                  "(run in onnxruntime)."),
    score: float = typer.Option(0.3, "--score", help="Detector score threshold."),
    gallery_dir: Optional[Path] = typer.Option(None, "--gallery", help="Add each tracklet to this gallery "
                                                                         "(created for the --reid model if missing)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Use every N-th frame."),
    start: int = typer.Option(1, "--start", min=1, help="First frame number to use."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    max_age: int = typer.Option(30, "--max-age", min=1, help="Frames a lost track is kept before it ends."),
    reid_every: int = typer.Option(5, "--reid-every", min=1,
                                   help="Re-embed a box that plainly continues its track only if the track's "
                                        "appearance is this many frames old (1: embed every box)."),
    cmc: bool = typer.Option(False, "--cmc", help="Compensate camera motion (panning, shaking camera) with "
                                                  "sparse optical flow between frames."),
    no_video: bool = typer.Option(False, "--no-video", help="Do not write the annotated tracks.mp4."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Detect, embed and track people in one camera's video; write MOT results, tracklets and a video.

    Example: `reid track vtest.avi -o out/cam1 --camera cam1 --gallery gal`.
    """
    from tqdm import tqdm

    from ..pipeline import NoFrames, open_source, run_tracking
    from ..pipeline.components import make_detector, make_embedder
    from ..tracking import TrackerConfig
    from ..tracking.camera_motion import CameraMotion

    detect, det_name, public = make_detector(detector, score, have_frames=source is not None)
    if source is None:
        if reid != "none":
            typer.echo("no frames: running motion-only (no crops to embed)", err=True)
        frames = NoFrames(public.last_frame, name=Path(public.path).parent.parent.name)
        embedder = None
    else:
        frames = open_source(source, stride=stride, start=start, limit=max_frames)
        embedder = make_embedder(reid)
    if public is not None and public.rescaled:
        typer.echo(f"{public.path}: scores outside [0, 1], rescaled min-max to [0, 1]", err=True)
    camera = camera or frames.name
    gallery = None
    if gallery_dir is not None:
        gallery = open_or_create_gallery(gallery_dir, reid, embedder)
    config = TrackerConfig(max_age=max_age)
    try:
        with tqdm(total=frames.frame_count, unit="frame", desc=f"track {camera}", disable=quiet) as bar:
            result = run_tracking(frames, detect, embedder, config, camera, output, video=not no_video,
                                  gallery=gallery, progress=bar.update, refresh=reid_every,
                                  camera_motion=CameraMotion() if cmc else None)
    finally:
        if gallery is not None:
            gallery.close()
    summary = {"camera": camera, "detector": det_name, "reid": reid if embedder is not None else "none",
               **result.summary()}
    if as_json:
        print_json(summary)
    else:
        s = summary
        split = ", ".join(f"{k} {v:.0%}" for k, v in s["share"].items())
        typer.echo(f"{s['frames']} frames at {s['fps']:.1f} fps ({split}); {s['tracks']} tracks, "
                   f"{s['reentries_restored']} re-entries restored")
        for key, path in s["outputs"].items():
            typer.echo(f"  {key}: {path}")
    for problem in result.problems:
        typer.echo(f"warning: {problem}", err=True)


def open_or_create_gallery(folder: Path, reid: str, embedder):
    from ..retrieval import Gallery
    from ..retrieval.gallery import DB_NAME
    from ..inference.model_id import model_spec, spec_name

    if embedder is None:
        raise ValueError("--gallery needs appearance features: drop --reid none")
    if (folder / DB_NAME).exists():
        gallery = Gallery.open(folder)
        if gallery.dim != embedder.dim:
            raise ValueError(f"gallery {folder} holds dim-{gallery.dim} features of {gallery.model}; "
                             f"--reid {reid} gives dim {embedder.dim}")
        return gallery
    onnx = Path(reid) if reid.endswith(".onnx") else None
    weights = None if reid == "default" or onnx else Path(reid)
    spec = model_spec(None, [], weights, onnx, embedder.preprocess, False)
    return Gallery.create(folder, spec_name(spec), embedder.dim, model_spec=spec)


@user_errors
def track_eval(
    gt: Path = typer.Option(..., "--gt", help="Ground truth, MOTChallenge gt.txt."),
    pred: Path = typer.Option(..., "--pred", help="Tracking results, MOTChallenge format (e.g. tracks.txt)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Sequence length (default: the last frame seen)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Score tracking results with trackeval: HOTA, DetA, AssA, MOTA, IDF1, ID switches."""
    from ..tracking.mot import evaluate_mot

    metrics = evaluate_mot(gt, pred, frames)
    if as_json:
        print_json(metrics)
        return
    typer.echo(" | ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()))
