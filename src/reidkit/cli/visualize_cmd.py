"""``reid visualize``: rank lists, ROC and an HTML report for a dataset's query/gallery split
(fast-reid's ``demo/visualize_result.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import plain_opts, user_errors


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
    from ..data.datasets import build_dataset
    from ..evaluation import format_table
    from ..fileio import check_output_dir
    from ..inference.embedder import runtime_for
    from ..inference.extract import extract_query_gallery
    from ..inference.preprocess import check_preprocess
    from ..inference.resolve import ModelSpec, resolve_embedder
    from ..viz import write_visualization
    from ..viz.report import SORTS
    from .extract_cmd import report_skipped

    if rank_sort not in SORTS:
        raise ValueError(f"--rank-sort must be one of {', '.join(SORTS)}, got {rank_sort!r}")
    check_preprocess(preprocess)
    check_output_dir(output, "--output")
    ds = build_dataset(dataset, root)
    embedder = resolve_embedder(ModelSpec(config_file, tuple(plain_opts(opts)), onnx=onnx, preprocess=preprocess),
                                runtime=runtime_for(len(ds.query) + len(ds.gallery)))
    feats = extract_query_gallery(embedder, ds, progress=not quiet)
    q, g, a = feats.query, feats.gallery, feats.arrays
    metrics = write_visualization(
        output, a["q_feat"], a["g_feat"], a["q_pids"], a["g_pids"], a["q_camids"], a["g_camids"],
        [r.path for r in q], [r.path for r in g], num_vis=num_vis, max_rank=max_rank,
        rank_sort=rank_sort, title=f"{embedder.name} on {ds.name} ({root})")
    typer.echo(format_table(metrics, title=f"{embedder.name} ({embedder.runtime}) on {ds.name}"))
    typer.echo(f"wrote {min(num_vis, len(q))} rank lists, roc.png, distances.png and report.html to {output}")
    report_skipped(feats.skipped)
