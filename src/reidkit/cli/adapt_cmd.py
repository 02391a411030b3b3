"""``reid adapt``: fine-tune a ReID model on the user's own unlabelled video."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import print_json, user_errors


@user_errors
def adapt(
    videos: List[Path] = typer.Argument(..., help="Videos or frame folders, one per camera, no labels needed."),
    output: Path = typer.Option(..., "--output", "-o", help="New folder for the model, crops and report."),
    start: int = typer.Option(1, "--start", min=1, help="First frame of each video."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", min=1, help="Frames to read from each video."),
    init: Optional[Path] = typer.Option(None, "--init", help="reidkit checkpoint to start from (default: the "
                                                             "shipped model); mining tracks with it too."),
    labelled: Optional[Path] = typer.Option(None, "--labelled", help="Labelled ReID data mixed into every batch "
                                                                     "so the model keeps what it knew (its "
                                                                     "training split is used)."),
    labelled_dataset: str = typer.Option("Market1501", "--labelled-dataset", help="Layout of --labelled."),
    iters: int = typer.Option(100, "--iters", min=1, help="Training steps, rounded up to a multiple of "
                                                            "--checkpoint-every."),
    checkpoint_every: int = typer.Option(20, "--checkpoint-every", min=1, help="Steps between resumable "
                                                                               "checkpoints."),
    batch_size: int = typer.Option(64, "--batch-size", min=8, help="Images per step (4 per person)."),
    lr: float = typer.Option(1.0e-4, "--lr", min=1e-7, max=1e-2, help="Learning rate (Adam)."),
    merge_distance: Optional[float] = typer.Option(None, "--merge-distance", min=0.0, max=2.0,
                                                   help="Also merge tracklets across time and cameras whose "
                                                        "cosine distance is under this (never two that overlap "
                                                        "in one camera); off by default."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run in --output."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Learn your cameras without labels: track people with the current model, treat each confident
    tracklet as one person, fine-tune on them, and write OUTPUT/model_final.pth for every command.

    Example: `reid adapt vtest.avi --max-frames 400 -o adapted --labelled ~/data/cuhk03`.
    """
    from ..pipeline.adapt import AdaptOptions
    from ..pipeline.adapt import adapt as run_adapt

    opts = AdaptOptions(start=start, max_frames=max_frames, iters=iters, checkpoint_every=checkpoint_every, base_lr=lr, batch_size=batch_size,
                        merge_distance=merge_distance)
    report = run_adapt([Path(v) for v in videos], output, init, labelled, labelled_dataset, opts, resume,
                       progress=not (quiet or as_json))
    if as_json:
        print_json(report)
        return
    typer.echo(f"learned from {report['frames']} frames: {report['tracklets']} tracklets, "
               f"{report['confident_tracklets']} confident, {report['pseudo_identities']} people, "
               f"{report['pseudo_crops']} crops; {report['labelled_images']} labelled images mixed in")
    typer.echo(f"{report['iterations']} steps in {report['seconds_this_run']:.0f} s; model: {report['model']}")
