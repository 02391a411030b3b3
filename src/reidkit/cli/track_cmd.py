"""``reid track`` (detect, embed and track people in a video) and ``reid track-eval``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from ..mtmc.associate import FALLBACK_THRESHOLD
from ..pipeline.components import DEFAULT_DETECTOR, DETECTOR_HELP
from ..tracking.base import TRACKERS
from .common import print_json, user_errors


@user_errors
def track(
    source: Optional[Path] = typer.Argument(None, help="A video file or a folder of frames (optional with "
                                                         "--detector mot:DET.txt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for tracks.txt, tracklets, crops, tracks.mp4."),
    camera: Optional[str] = typer.Option(None, "--camera", help="Camera name (default: the input's name)."),
    detector: str = typer.Option(DEFAULT_DETECTOR, "--detector", "-d", help=DETECTOR_HELP),
    tracker: str = typer.Option("reidkit", "--tracker", help=f"Tracker: {', '.join(TRACKERS)} (Kalman + appearance "
                                                            "+ a weak-box pass; the README's tracking section)."),
    det_size: Optional[str] = typer.Option(None, "--det-size", help="Detector input WIDTHxHEIGHT, multiples of 32 "
                                                                   "(YOLO kinds; default the model's own, 416x416 "
                                                                   "for YOLOX-Nano). Larger finds smaller people: "
                                                                   "e.g. 1088x608 for 1080p video."),
    reid: Optional[str] = typer.Option(None, "--reid", "--embedder",
                                       help="Appearance model: default, none (motion-only), MODEL.onnx or a "
                                            "checkpoint (run in onnxruntime). Default: the --gallery's own model "
                                            "when it exists, else the shipped model."),
    score: float = typer.Option(0.1, "--score", min=0.0, max=1.0,
                                help="Detector score threshold, in [0, 1]: boxes from 0.1 help keep occluded people "
                                     "(matched by overlap only); tracks start from 0.65."),
    gallery_dir: Optional[Path] = typer.Option(None, "--gallery", help="Add each tracklet to this gallery "
                                                                         "(created for the --reid model if missing) "
                                                                         "with a global id across runs and cameras."),
    id_threshold: Optional[float] = typer.Option(None, "--id-threshold", min=0.0, max=2.0,
                                                 help="With --gallery: cosine distance under which a finished "
                                                      "tracklet joins the nearest identity already in the gallery "
                                                      f"(else it is a new one). Default: {FALLBACK_THRESHOLD} times "
                                                      "the model card's distance_scale."),
    topology: Optional[Path] = typer.Option(None, "--topology", help="With --gallery: YAML of allowed camera "
                                                                     "transitions and travel times (see reid mtmc)."),
    stride: int = typer.Option(1, "--stride", min=1, help="Use every N-th frame."),
    start: int = typer.Option(1, "--start", min=1, help="First frame number to use."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Stop after this many frames."),
    max_age: int = typer.Option(30, "--max-age", min=1, help="Frames a lost track is kept before it ends."),
    reid_every: int = typer.Option(10, "--reid-every", min=1,
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

    from ..detection.yolo import parse_size
    from ..fileio import check_output_dir
    from ..mtmc.associate import Topology
    from ..mtmc.online import OnlineIdentities
    from ..pipeline import NoFrames, open_source, run_tracking
    from ..pipeline.components import make_detector, make_embedder
    from ..pipeline.ingest import open_or_create_gallery
    from ..pipeline.sources import frames_near
    from ..tracking import TrackerConfig
    from ..tracking.camera_motion import CameraMotion

    check_output_dir(output, "--output")
    TRACKERS.entry(tracker)  # an unknown --tracker fails before any model loads
    if gallery_dir is not None:
        check_output_dir(gallery_dir, "--gallery")
        if reid == "none":
            raise ValueError("--gallery needs appearance features: drop --reid none")
    elif topology is not None:
        raise ValueError("--topology needs --gallery (it constrains the global ids given there)")
    topo = Topology.from_yaml(topology) if topology is not None else None
    size = None if det_size is None else parse_size(det_size)[::-1]
    detect, det_name, public = make_detector(detector, score, have_frames=source is not None, input_size=size)
    config = TrackerConfig.for_scores(public is None or not public.rescaled, max_age=max_age,
                                      appearance_refresh=reid_every)
    gallery = embedder = identities = None
    try:
        if source is None:
            if reid not in (None, "none"):
                typer.echo("no frames: running motion-only (no crops to embed)", err=True)
            if gallery_dir is not None:
                raise ValueError("--gallery needs frames to embed: give the video or frames folder too")
            visit = frames_near(public.frames, config.max_age + 1, start, stride, max_frames)
            if not visit:
                raise ValueError(f"{public.path}: no detections from frame {start} on (--start)")
            frames = NoFrames(visit, name=Path(public.path).parent.parent.name, size=public.image_size)
        else:
            frames = open_source(source, stride=stride, start=start, limit=max_frames)
        camera = camera or frames.name
        if topo is not None and not any(camera in (t.source, t.target) for t in topo.transitions):
            # checked before the gallery is opened, so a refused run leaves no new gallery behind
            raise ValueError(f"{topology}: camera {camera!r} is in no transition (every other camera would be ruled "
                             "out): add it, or name the camera with --camera")
        if source is not None:
            if gallery_dir is not None:
                gallery, embedder = open_or_create_gallery(gallery_dir, reid)
                if id_threshold is None:
                    scale = embedder.card.distance_scale if embedder.card is not None else 1.0
                    id_threshold = FALLBACK_THRESHOLD * scale
                identities = OnlineIdentities(gallery, id_threshold, topo)
            elif reid != "none":
                embedder = make_embedder(reid or "default")
            if embedder is not None and embedder.card is not None:  # the tracker's thresholds in this model's units
                config = dataclasses.replace(config, distance_scale=embedder.card.distance_scale)
        if public is not None and public.rescaled:
            typer.echo(f"{public.path}: scores outside [0, 1], rescaled min-max to [0, 1]", err=True)
        with tqdm(total=frames.frame_count, unit="frame", desc=f"track {camera}", disable=quiet) as bar:
            result = run_tracking(frames, detect, embedder, config, camera, output, video=not no_video,
                                  identities=identities, progress=bar.update, camera_motion=CameraMotion() if cmc else None,
                                  tracker=tracker)
    finally:
        if gallery is not None:
            gallery.close()
    summary = {"camera": camera, "detector": det_name, "reid": embedder.name if embedder is not None else "none",
               "distance_scale": config.distance_scale,
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
