"""``reid visualize``: rank lists, ROC and an HTML report for a dataset's query/gallery split
(fast-reid's ``demo/visualize_result.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import user_errors


@user_errors
def visualize(
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...",
                                               help="Config overrides, e.g. MODEL.WEIGHTS model.pth."),
    root: Path = typer.Option(..., "--root", help="The dataset's folder."),
    dataset: str = typer.Option("Market1501", "--dataset", help="Parser for its layout."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the PNGs, metrics.json and report.html."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c",
                                               help="Model config; weights from MODEL.WEIGHTS (default: the "
                                                    "shipped model)."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="An ONNX model from `reid export onnx`."),
    preprocess: str = typer.Option("loader", "--preprocess", help="'loader' (PIL bicubic) or 'demo' (OpenCV)."),
    num_vis: int = typer.Option(20, "--num-vis", min=0, help="How many queries' rank lists to save."),
    max_rank: int = typer.Option(10, "--max-rank", min=1, help="Gallery images per rank list."),
    rank_sort: str = typer.Option("ascending", "--rank-sort",
                                  help="Order of the saved queries by average precision: ascending (worst "
                                       "first), descending (best first) or none (dataset order)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Save rank-list images (green: same person, red: another), the ROC curve, distance histograms and a self-contained HTML report."""
    from tqdm import tqdm

    from ..data.datasets import build_dataset
    from ..evaluation import format_table
    from ..viz import write_visualization
    from ..viz.report import SORTS
    from .extract_cmd import build_embedder

    if rank_sort not in SORTS:
        raise ValueError(f"--rank-sort must be one of {', '.join(SORTS)}, got {rank_sort!r}")
    opts = [o for o in (opts or []) if o != "--opts"]
    ds = build_dataset(dataset, root)
    embedder = build_embedder(config_file, opts, onnx, preprocess, False, 32, "cpu")
    feats = {}
    for split, records in (("query", ds.query), ("gallery", ds.gallery)):
        with tqdm(total=len(records), unit="img", desc=split, disable=quiet) as bar:
            f, ok, failed = embedder.embed_files([r.path for r in records], progress=bar.update)
        if failed:
            raise ValueError(f"{len(failed)} unreadable {split} images, e.g. {failed[0][1]}")
        feats[split] = f
    q, g = ds.query, ds.gallery
    metrics = write_visualization(
        output, feats["query"], feats["gallery"], [r.pid for r in q], [r.pid for r in g], [r.camid for r in q],
        [r.camid for r in g], [r.path for r in q], [r.path for r in g], num_vis=num_vis, max_rank=max_rank,
        rank_sort=rank_sort, title=f"{embedder.name} on {ds.name} ({root})")
    typer.echo(format_table(metrics, title=f"{embedder.name} on {ds.name}"))
    typer.echo(f"wrote {min(num_vis, len(q))} rank lists, roc.png, distances.png and report.html to {output}")
