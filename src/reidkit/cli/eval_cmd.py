"""``reid eval-features``: metrics of saved features or a distance matrix."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..config import load_config
from ..evaluation import evaluate, format_table, load_features
from ..evaluation.evaluator import load_query_gallery, options_from_config
from .common import print_json, user_errors


@user_errors
def eval_features(
    features: Path = typer.Argument(..., help=".npz with q_feat, g_feat and/or distmat, q_pids, g_pids, "
                                              "q_camids, g_camids; with --gallery, the query images' "
                                              "features.npz from `reid extract`."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...",
                                               help="With --config: overrides, e.g. TEST.RERANK.ENABLED True."),
    metric: str = typer.Option("cosine", "--metric", help="cosine or euclidean (squared, as fast-reid)."),
    rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."),
    rerank_variant: str = typer.Option("fastreid", "--rerank-variant",
                                       help="fastreid (its evaluator's TEST.RERANK) or zhong (original paper)."),
    k1: int = typer.Option(20, "--k1", help="Neighbours that define k-reciprocal sets."),
    k2: int = typer.Option(6, "--k2", help="Neighbours averaged in local query expansion."),
    lambda_value: float = typer.Option(0.3, "--lambda", help="Weight of the original distance (rest: Jaccard)."),
    aqe: bool = typer.Option(False, "--aqe", help="Average query expansion before ranking."),
    qe_k: int = typer.Option(5, "--qe-k", help="Neighbours AQE averages."),
    cuhk03: bool = typer.Option(False, "--cuhk03", help="CUHK03 single-gallery-shot CMC."),
    roc: bool = typer.Option(True, "--roc/--no-roc", help="Also report TPR at FPR 1e-4, 1e-3, 1e-2."),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="The gallery images' features.npz from "
                                                                    "`reid extract` (FEATURES is then the query's)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Take TEST.METRIC, TEST.RERANK.*, TEST.AQE.* and "
                                               "TEST.ROC.ENABLED from this (fast-reid) config instead of the "
                                               "options above."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (metrics in percent)."),
) -> None:
    """Evaluate saved features: Rank-1/5/10, mAP, mINP (Market protocol) and TPR@FPR."""
    arrays = load_query_gallery(features, gallery) if gallery is not None else load_features(features)
    opts = [o for o in (opts or []) if o != "--opts"]
    if config is not None:
        options = options_from_config(load_config(config, opts).TEST)
    elif opts:
        raise ValueError(f"overrides {opts} need --config CONFIG")
    else:
        options = dict(metric=metric, rerank=rerank_variant if rerank else None, k1=k1, k2=k2,
                       lambda_value=lambda_value, aqe=aqe, qe_k=qe_k, roc=roc)
    metrics = evaluate(arrays, cuhk03=cuhk03, **options)
    if as_json:
        print_json(metrics)
    else:
        typer.echo(format_table(metrics, title=str(features)))
