"""``reid eval-features``: metrics of saved features or a distance matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..evaluation import evaluate, format_table, load_features
from .common import print_json, user_errors


@user_errors
def eval_features(
    features: Path = typer.Argument(..., help=".npz with q_feat, g_feat and/or distmat, q_pids, g_pids, "
                                              "q_camids, g_camids."),
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
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (metrics in percent)."),
) -> None:
    """Evaluate saved features: Rank-1/5/10, mAP, mINP (Market protocol) and TPR@FPR."""
    arrays = load_features(features)
    metrics = evaluate(arrays, metric=metric, rerank=rerank_variant if rerank else None, k1=k1, k2=k2,
                       lambda_value=lambda_value, aqe=aqe, qe_k=qe_k, roc=roc, cuhk03=cuhk03)
    if as_json:
        print_json(metrics)
    else:
        typer.echo(format_table(metrics, title=str(features)))
