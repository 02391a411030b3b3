"""``reid data``: synthetic data and dataset summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..data.datasets import DATASETS, build_dataset
from ..data.synthetic import generate
from .common import print_json, user_errors

app = typer.Typer(help="Create and inspect datasets.", no_args_is_help=True)


@app.command("synth")
@user_errors
def synth(
    out: Path = typer.Option(..., "--out", help="Folder to write (Market-1501 layout)."),
    ids: int = typer.Option(100, "--ids", min=2, max=9999, help="Identities; half train, half query/gallery."),
    cameras: int = typer.Option(4, "--cameras", min=2, max=9,
                                help="Cameras, each with its own lighting, scale and blur."),
    images_per_camera: int = typer.Option(3, "--images-per-camera", min=2, help="Images of each identity per camera."),
    distractors: int = typer.Option(20, "--distractors", min=0, help="Gallery images of unlabelled people (id 0)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Same seed, same images."),
    as_json: bool = typer.Option(False, "--json", help="Print counts as JSON."),
) -> None:
    """Draw a synthetic pedestrian ReID dataset seen by several cameras."""
    counts = generate(out, num_ids=ids, num_cameras=cameras, images_per_camera=images_per_camera,
                      num_distractors=distractors, seed=seed)
    if as_json:
        print_json(counts)
    else:
        typer.echo(build_dataset("Market1501", out).summary())


@app.command("summary")
@user_errors
def summary(
    name: str = typer.Argument(..., help=f"Dataset parser: {', '.join(DATASETS)} (or a known alias)."),
    root: Path = typer.Argument(..., help="The dataset's folder (or the folder holding it)."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Parse a dataset and print identities, images and cameras per split."""
    ds = build_dataset(name, root)
    if as_json:
        print_json({s: {"ids": i, "images": n, "cameras": c} for s, i, n, c in ds.stats()})
    else:
        typer.echo(ds.summary())


@app.command("crops")
@user_errors
def crops(
    video: Path = typer.Argument(..., help="Video file or folder of frames (numbered as in the ground truth)."),
    gt: Path = typer.Option(..., "--gt", help="MOTChallenge ground truth of that video (gt.txt)."),
    out: Path = typer.Option(..., "--output", "-o", help="New folder for the split (Market-1501 layout)."),
    query_from: int = typer.Option(..., "--query-from", min=2,
                                   help="First query frame: earlier frames are the gallery, this one on the queries."),
    start: int = typer.Option(1, "--start", min=1, help="First frame to use."),
    end: Optional[int] = typer.Option(None, "--end", min=1, help="Last frame to use (default: the last in --gt)."),
    every: int = typer.Option(1, "--every", min=1, help="Use every N-th frame (neighbouring frames are near copies)."),
    min_height: int = typer.Option(0, "--min-height", min=0, help="Leave out boxes shorter than this (pixels)."),
    as_json: bool = typer.Option(False, "--json", help="Print counts as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Cut a ReID test split from a labelled video: ground-truth boxes before --query-from become the
    gallery, later ones the queries, so `reid eval --root OUT` measures a model on your own camera."""
    from ..pipeline.crop_split import cut_crop_split

    counts = cut_crop_split(video, gt, out, query_from, start, end, every, min_height, progress=not (quiet or as_json))
    if as_json:
        print_json(counts.as_dict())
        return
    typer.echo(f"{out}: {counts.gallery_images} gallery crops of {counts.gallery_ids} people, "
               f"{counts.query_images} query crops of {counts.query_ids} people from {counts.frames_read} frames")
    if counts.query_ids_not_in_gallery:
        typer.echo(f"left out the query crops of {counts.query_ids_not_in_gallery} people who are not in the gallery")
    if counts.boxes_too_small:
        typer.echo(f"left out {counts.boxes_too_small} boxes under {max(min_height, 2)} px")
