"""``reid demo``: the shipped default model against two baselines on real pedestrian crops, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import print_json, user_errors


@user_errors
def demo(
    root: Optional[Path] = typer.Option(None, "--root",
                                        help="A dataset folder (default: the 96 real Market-1501 crops shipped with reidkit)."),
    dataset: str = typer.Option("Market1501", "--dataset", help="Parser for --root's layout."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Re-find people across cameras with the default model, ImageNet-only Lite0 and colour histograms."""
    import torch

    from ..checkpoint import model_from_checkpoint
    from ..data.datasets import build_dataset
    from ..engine.trainer import TestSet, evaluate_model
    from ..evaluation import evaluate, format_comparison
    from ..inference.extract import extract_query_gallery
    from ..modeling import build_model
    from ..modeling.color_histogram import ColorHistogramEmbedder
    from ..samples import MARKET1501_MINI
    from ..weights import default_weights

    ds = build_dataset(dataset, root or MARKET1501_MINI)
    if not as_json:
        typer.echo(ds.summary())
    test_set = TestSet(ds.name, ds.query, ds.gallery)
    trained, cfg = model_from_checkpoint(default_weights())
    imagenet_cfg = cfg.clone().freeze(False)
    imagenet_cfg.MODEL.BACKBONE.PRETRAIN = True
    imagenet = build_model(imagenet_cfg)
    cpu = torch.device("cpu")
    with torch.inference_mode():
        results = {
            "default model (Lite0, ReID-trained)": evaluate_model(cfg, trained, test_set, cpu),
            "same network, ImageNet weights only": evaluate_model(cfg, imagenet, test_set, cpu),
            "colour histogram": evaluate(extract_query_gallery(ColorHistogramEmbedder(), ds, progress=False)),
        }
    if as_json:
        print_json(results)
        return
    keys = ("Rank-1", "Rank-5", "mAP", "mINP")
    typer.echo("")
    typer.echo(format_comparison({name: {k: m[k] for k in keys} for name, m in results.items()},
                                 title=f"query -> gallery across cameras, {len(ds.query)} queries"))
