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
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="Also write the global ids into this gallery "
                                                                   "(its items from `reid track --gallery`, by "
                                                                   "camera and track id), replacing earlier ones."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Give each person one id across cameras: associate per-camera tracklets into identities."""
    from ..fileio import check_output_dir
    from ..pipeline.mtmc_run import run_mtmc

    check_output_dir(output, "--output")
    summary = run_mtmc(inputs, output, reid, threshold, topology, rerank, closed_world, gallery)
    if as_json:
        print_json(summary)
        return
    typer.echo(f"{summary['tracklets']} tracklets of {', '.join(summary['cameras'])} -> {summary['identities']} "
               f"identities ({summary['in_several_cameras']} seen in more than one camera); wrote {output}")


@user_errors
def mtmc_eval(
    pred: Path = typer.Option(..., "--pred", help="A `reid mtmc` output folder or its identities.csv "
                                                  "(camera,track_id,global_id)."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="CSV camera,track_id,person_id: who each tracklet "
                                                               "really is."),
    gt: Optional[List[str]] = typer.Option(None, "--gt", help="CAMERA=GT.txt: MOTChallenge ground truth of a camera, "
                                                              "person ids global across cameras (repeatable). "
                                                              "Adds IDF1 over all cameras."),
    show_links: bool = typer.Option(False, "--links", help="List the links the truth calls wrong, and the ones "
                                                           "it says were missed, with their tracklets."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Score identities: pairwise precision, recall, F1 and purity; with --gt, IDF1 over all cameras."""
    from ..pipeline.mtmc_score import score_mtmc

    gts = {}
    for item in gt or []:
        camera, sep, path = item.partition("=")
        if not sep or not camera or not path:
            raise ValueError(f"--gt {item!r}: expected CAMERA=GT.txt (e.g. --gt cam1=cam1/gt/gt.txt)")
        if camera in gts:
            raise ValueError(f"--gt: camera {camera!r} given twice")
        gts[camera] = Path(path)
    scores = score_mtmc(pred, truth, gts, show_links)
    if as_json:
        print_json(scores)
        return
    listed = scores.pop("links", None)
    joined = {k: scores.pop(k) for k in ("all_cameras_global_ids", "all_cameras_per_camera_ids") if k in scores}
    typer.echo(" | ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
    for key, m in joined.items():
        typer.echo(f"{key.replace('_', ' ')}: IDF1 {m['IDF1']:.1f} | HOTA {m['HOTA']:.1f} | IDSW {m['IDSW']}")
    if listed is not None:
        for kind in ("wrong", "missed"):
            typer.echo(f"{listed[kind + '_links']} {kind} link(s)" + (":" if listed[kind] else ""))
            for a, b in listed[kind]:
                typer.echo("  " + "  <->  ".join(f"{t['camera']}/{t['track_id']} (person {t['person']}, identity "
                                                  f"{t['identity']}, frames {t['frames'][0]}-{t['frames'][1]})"
                                                  for t in (a, b)))
