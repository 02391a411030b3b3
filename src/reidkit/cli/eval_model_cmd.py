"""``reid eval``: a model's rank metrics on a dataset's query/gallery split."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import plain_opts, print_json, user_errors
from .extract_cmd import report_skipped


@user_errors
def eval_model(
    root: Path = typer.Option(..., "--root", help="The dataset's folder (query and gallery; no training split needed)."),
    dataset: str = typer.Option("Market1501", "--dataset", help="Parser for its layout (see `reid data summary --help`)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="Checkpoint (default: the shipped Lite0 model). reidkit's carry "
                                                "their config; fast-reid's need --config-file."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c",
                                               help="Config for the model and the TEST.* evaluation settings."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...", help="Config overrides."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (metrics in percent)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Evaluate a model on a dataset: Rank-1/5/10, mAP, mINP under the Market protocol.

    Images are embedded in onnxruntime (the model is exported in memory) or, for few images or on
    a GPU, in torch; the summary line says which."""
    import time

    from ..checkpoint import model_from_checkpoint
    from ..config import check_values
    from ..data.datasets import build_dataset
    from ..engine.launch import resolve_device
    from ..engine.testing import test_embedder
    from ..evaluation import evaluate, format_table
    from ..evaluation.evaluator import options_from_config
    from ..inference.embedder import runtime_for
    from ..inference.extract import extract_query_gallery
    from ..inference.resolve import ModelSpec, load_model
    from ..weights import default_weights

    opts = plain_opts(opts)
    ds = build_dataset(dataset, root)  # before the model: a wrong folder is reported at once
    if config_file is not None or not opts:
        model, cfg, weights, _ = load_model(ModelSpec(config_file, tuple(opts), weights))
    else:  # a reidkit checkpoint with overrides of its own config (e.g. TEST.* settings)
        weights = weights or default_weights()
        model, cfg = model_from_checkpoint(weights)
        cfg = check_values(cfg.clone().freeze(False).merge_from_list(opts), f"{weights} + the overrides").freeze()
    device = resolve_device(cfg)
    images = len(ds.query) + len(ds.gallery)
    embedder = test_embedder(cfg, model, device, runtime_for(images, device.type))
    start = time.perf_counter()
    feats = extract_query_gallery(embedder, ds, progress=not quiet)
    speed = images / max(time.perf_counter() - start, 1e-9)
    metrics = evaluate(feats.arrays, **options_from_config(cfg.TEST))
    if as_json:
        print_json(metrics)
    else:
        typer.echo(format_table(metrics, title=f"{weights} on {ds.name} ({root})"))
        typer.echo(f"embedded {images} images in {embedder.runtime} at {speed:.1f} images/s")
    report_skipped(feats.skipped)
