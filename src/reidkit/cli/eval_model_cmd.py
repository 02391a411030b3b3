"""``reid eval``: a model's rank metrics on a dataset's query/gallery split."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import load_model, print_json, user_errors


@user_errors
def eval_model(
    root: Path = typer.Option(..., "--root", help="The dataset's folder."),
    dataset: str = typer.Option("Market1501", "--dataset", help="Parser for its layout (see `reid data summary --help`)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="Checkpoint (default: the shipped Lite0 model). reidkit's carry "
                                                "their config; fast-reid's need --config-file."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c",
                                               help="Config for the model and the TEST.* evaluation settings."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...", help="Config overrides."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (metrics in percent)."),
) -> None:
    """Evaluate a model on a dataset: Rank-1/5/10, mAP, mINP under the Market protocol."""
    import torch

    from ..checkpoint import model_from_checkpoint
    from ..data.datasets import build_dataset
    from ..engine.launch import resolve_device
    from ..engine.trainer import TestSet, evaluate_model
    from ..evaluation import format_table
    from ..weights import default_weights

    opts = [o for o in (opts or []) if o != "--opts"]
    if config_file is not None or not opts:
        model, cfg, weights = load_model(config_file, opts, weights)
    else:  # a reidkit checkpoint with overrides of its own config (e.g. TEST.* settings)
        weights = weights or default_weights()
        model, cfg = model_from_checkpoint(weights)
        cfg = cfg.clone().freeze(False).merge_from_list(opts).freeze()
    device = resolve_device(cfg)
    ds = build_dataset(dataset, root)
    with torch.no_grad():
        metrics = evaluate_model(cfg, model.to(device), TestSet(ds.name, ds.query, ds.gallery), device)
    if as_json:
        print_json(metrics)
    else:
        typer.echo(format_table(metrics, title=f"{weights} on {ds.name} ({root})"))
