"""``reid mtmc`` (one identity per person across cameras) and ``reid mtmc-eval``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import print_json, user_errors


@user_errors
def mtmc(
    inputs: List[Path] = typer.Argument(..., help="One folder per camera: a `reid track` output, or tracklet crops "
                                                   "laid out TRACK_ID/*.jpg (the camera is the folder's name)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for identities.csv/.json, tracks/, index.html."),
    reid: str = typer.Option("default", "--reid", help="ReID model for crop folders: default, MODEL.onnx or a "
                                                       "checkpoint (`reid track` outputs bring their features)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=2.0,
                                              help="Cosine distance under which tracklets may be one person "
                                                   "(default: calibrated on the pairs known to be two people)."),
    topology: Optional[Path] = typer.Option(None, "--topology", help="YAML of allowed camera transitions with "
                                                                     "min/max travel seconds."),
    rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking of the tracklet distances."),
    closed_world: bool = typer.Option(False, "--closed-world", help="Everyone appears in every camera: match "
                                                                    "one-to-one (two cameras: Hungarian)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Give each person one id across cameras: associate per-camera tracklets into identities."""
    from ..fileio import check_output_dir
    from ..pipeline.mtmc_run import run_mtmc

    check_output_dir(output, "--output")
    summary = run_mtmc(inputs, output, reid, threshold, topology, rerank, closed_world)
    if as_json:
        print_json(summary)
        return
    typer.echo(f"{summary['tracklets']} tracklets of {', '.join(summary['cameras'])} -> {summary['identities']} "
               f"identities ({summary['in_several_cameras']} seen in more than one camera); wrote {output}")


@user_errors
def mtmc_eval(
    pred: Path = typer.Option(..., "--pred", help="identities.csv from `reid mtmc` (camera,track_id,global_id)."),
    truth: Path = typer.Option(..., "--truth", help="CSV camera,track_id,person_id: who each tracklet really is."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Score identities: pairwise precision, recall, F1 and purity over the tracklets both files name."""
    from ..mtmc.metrics import pairwise_scores
    from ..mtmc.tables import read_labels

    predicted = read_labels(pred, "global_id")
    true = read_labels(truth, "person_id")
    common = sorted(set(predicted) & set(true))
    if not common:
        raise ValueError(f"{pred} and {truth} name no tracklet (camera, track_id) in common")
    scores = pairwise_scores([predicted[k] for k in common], [true[k] for k in common])
    scores["missing_from_pred"] = len(set(true) - set(predicted))
    if as_json:
        print_json(scores)
        return
    typer.echo(" | ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
