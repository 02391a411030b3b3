"""``reid demo``: the default model against two baselines on real crops, then the whole pipeline
(detect, embed, track, gallery, search) on a real video clip, offline."""

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
    video: Optional[Path] = typer.Option(None, "--video", help="Video for the pipeline part (default: a "
                                                                "200-frame PETS09 clip shipped with reidkit)."),
    output: Path = typer.Option(Path("demo-output"), "--output", "-o", help="Folder for the pipeline's outputs."),
    no_pipeline: bool = typer.Option(False, "--no-pipeline", help="Only the metrics comparison."),
) -> None:
    """Re-find people across cameras (default model vs ImageNet-only Lite0 vs colour histograms), then
    track people in a video clip into a gallery and search it with a person from later in the clip."""
    import torch

    from ..checkpoint import model_from_checkpoint
    from ..data.datasets import build_dataset
    from ..engine.testing import TestSet, evaluate_embedder, test_embedder
    from ..evaluation import evaluate, format_comparison
    from ..fileio import check_output_dir
    from ..inference.embedder import runtime_for
    from ..inference.extract import extract_query_gallery
    from ..modeling import build_model
    from ..modeling.color_histogram import ColorHistogramEmbedder
    from ..samples import MARKET1501_MINI
    from ..weights import default_weights

    if not no_pipeline:
        check_output_dir(output, "--output")
    ds = build_dataset(dataset, root or MARKET1501_MINI)
    if not as_json:
        typer.echo(ds.summary())
    test_set = TestSet(ds.name, ds.query, ds.gallery)
    trained, cfg = model_from_checkpoint(default_weights())
    imagenet_cfg = cfg.clone().freeze(False)
    imagenet_cfg.MODEL.BACKBONE.PRETRAIN = True
    imagenet = build_model(imagenet_cfg)
    runtime = runtime_for(len(ds.query) + len(ds.gallery))
    progress = not as_json
    with torch.inference_mode():
        models = {name: test_embedder(cfg, model, "cpu", runtime) for name, model in
                  (("default model (Lite0, ReID-trained)", trained), ("same network, ImageNet weights only", imagenet))}
        results = {name: evaluate_embedder(cfg, embedder, test_set, progress) for name, embedder in models.items()}
        results["colour histogram"] = evaluate(extract_query_gallery(ColorHistogramEmbedder(), ds, progress).arrays)
    pipeline = None
    if not no_pipeline:
        from ..pipeline.demo import run_demo_pipeline
        from ..samples import PETS09_CLIP, PETS09_CLIP_GT

        pipeline = run_demo_pipeline(video or PETS09_CLIP, output, truth=None if video else PETS09_CLIP_GT)
    if as_json:
        print_json({"metrics": results, **({"pipeline": pipeline} if pipeline else {})})
        return
    keys = ("Rank-1", "Rank-5", "mAP", "mINP")
    typer.echo("")
    typer.echo(format_comparison({name: {k: m[k] for k in keys} for name, m in results.items()},
                                 title=f"query -> gallery across cameras, {len(ds.query)} queries "
                                       f"(models run in {runtime})"))
    if pipeline:
        _print_pipeline(pipeline, output)


def _print_pipeline(p: dict, output: Path) -> None:
    typer.echo("")
    for half in ("first_half", "second_half"):
        s = p[half]
        typer.echo(f"{half.replace('_', ' ')}: {s['frames']} frames at {s['fps']:.1f} fps, {s['tracks']} tracks "
                   f"-> {s['outputs'].get('video', '')}")
    search = p["search"]
    if isinstance(search, str):
        typer.echo(search)
        return
    who = search.get("query_person")
    typer.echo(f"searched the first half's gallery for track {search['query_track']} of the second half "
               f"(frames {search['query_frames'][0]}-{search['query_frames'][1]}"
               + (f", person {who} in the ground truth" if who is not None else "") + "):")
    verdict = {True: "right: the same person", False: "wrong: another person", None: "not in the ground truth"}
    for rank, hit in enumerate(search["hits"], start=1):
        judged = f"; {verdict[hit['right']]}" if who is not None else ""
        typer.echo(f"  #{rank} track {hit.get('track_id')} (frames from {hit.get('frame')}), cosine {hit['score']:.3f}"
                   f"{judged}")
    typer.echo(f"rank list picture: {search['picture']}")
