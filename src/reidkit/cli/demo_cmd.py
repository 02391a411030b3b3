"""``reid demo``: synthetic data -> features -> metrics, offline in seconds."""

from __future__ import annotations

from pathlib import Path

import typer

from ..data.datasets import build_dataset
from ..data.synthetic import generate
from ..evaluation import evaluate, format_table
from ..inference.extract import extract_query_gallery
from ..modeling.color_histogram import ColorHistogramEmbedder
from .common import print_json, user_errors


@user_errors
def demo(
    out: Path = typer.Option(Path("demo_output"), "--out", help="Where the synthetic dataset is written."),
    ids: int = typer.Option(200, "--ids", help="Identities in the synthetic dataset."),
    seed: int = typer.Option(0, "--seed"),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Generate a synthetic dataset, embed it with the colour-histogram baseline and evaluate it."""
    data_dir = out / "synth"
    generate(data_dir, num_ids=ids, num_cameras=4, seed=seed)
    ds = build_dataset("Market1501", data_dir)
    if not as_json:
        typer.echo(ds.summary())
    arrays = extract_query_gallery(ColorHistogramEmbedder(), ds, progress=not as_json)
    results = {"plain": evaluate(arrays), "re-ranked": evaluate(arrays, rerank="fastreid")}
    if as_json:
        print_json(results)
        return
    for name, metrics in results.items():
        typer.echo("")
        typer.echo(format_table(metrics, title=f"colour-histogram baseline, {name}"))
