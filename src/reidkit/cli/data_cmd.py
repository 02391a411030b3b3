"""``reid data``: synthetic data and dataset summaries."""

from __future__ import annotations

from pathlib import Path

import typer

from ..data.datasets import DATASET_REGISTRY, build_dataset
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
    name: str = typer.Argument(..., help=f"Dataset parser: {', '.join(sorted(DATASET_REGISTRY))}."),
    root: Path = typer.Argument(..., help="The dataset's folder (or the folder holding it)."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Parse a dataset and print identities, images and cameras per split."""
    ds = build_dataset(name, root)
    if as_json:
        print_json({s: {"ids": i, "images": n, "cameras": c} for s, i, n, c in ds.stats()})
    else:
        typer.echo(ds.summary())
