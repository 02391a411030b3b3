"""``reid train``: fast-reid's ``tools/train_net.py`` (train, resume, or evaluate only)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import typer

from .common import plain_opts, print_json, user_errors

#: What a training run leaves in OUTPUT_DIR and a new run would overwrite.
RUN_FILES = ("last.pth", "model_final.pth", "model_best.pth", "model_[0-9]*.pth", "eval.csv", "metrics.csv")


def previous_run(out: Path) -> list[Path]:
    """Files of an earlier run in ``out`` (checkpoints, evaluations, metrics)."""
    return sorted({p for pattern in RUN_FILES for p in out.glob(pattern)})


def _log_to(output: Path, rank: int) -> None:
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
        return
    handler = logging.FileHandler(output / "log.txt")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


@user_errors
def train(
    config_file: Path = typer.Option(..., "--config-file", "-c", help="YAML config (fast-reid's files work)."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...",
                                               help="Overrides, e.g. DATASETS.ROOT ~/datasets OUTPUT_DIR out/x."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT_DIR/last.pth if it exists."),
    force: bool = typer.Option(False, "--force", help="Start afresh in an OUTPUT_DIR that holds an earlier run, "
                                                      "deleting its checkpoints, eval.csv and metrics.csv."),
    eval_only: bool = typer.Option(False, "--eval-only", help="Only evaluate MODEL.WEIGHTS on DATASETS.TESTS."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as JSON."),
) -> None:
    """Train a ReID model from a config; run it with torchrun for several processes (DDP)."""
    from ..config import load_config
    from ..engine import launch
    from ..engine.testing import evaluate_model
    from ..engine.trainer import Trainer
    from ..evaluation import format_table

    from ..fileio import atomic_write_text, check_output_dir

    if resume and force:
        raise ValueError("give --resume (continue the run in OUTPUT_DIR) or --force (start afresh), not both")
    cfg = load_config(config_file, plain_opts(opts))
    output = check_output_dir(Path(cfg.OUTPUT_DIR), "OUTPUT_DIR")
    earlier = [] if eval_only else previous_run(output)
    if earlier and not resume and not force:
        names = ", ".join(p.name for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise ValueError(f"OUTPUT_DIR {output} holds an earlier run ({names}): continue it with --resume, start "
                         "afresh there with --force (deletes them), or choose another OUTPUT_DIR")
    rank, world, local = launch.distributed_context()
    device = launch.resolve_device(cfg)
    if device.type == "cuda" and world > 1:
        device = __import__("torch").device("cuda", local)
    launch.init_distributed(device, world)
    launch.seed_everything(cfg.SEED)
    out = launch.output_dir(cfg)
    if force and rank == 0:
        for path in earlier:
            path.unlink()
    _log_to(out, rank)
    if eval_only:
        if not cfg.MODEL.WEIGHTS:
            raise ValueError("--eval-only needs MODEL.WEIGHTS (a checkpoint path) among the overrides")
        from ..checkpoint import classifier_size, load_checkpoint

        classes = classifier_size(load_checkpoint(cfg.MODEL.WEIGHTS)) or 1
        model = launch.prepare_model(cfg, classes, device, 1, local)
        from ..inference.embedder import runtime_for

        results = {ts.name: evaluate_model(cfg, model, ts, device, runtime_for(len(ts.query) + len(ts.gallery),
                                                                               device.type), progress=progress)
                   for ts in launch.test_sets(cfg)}
    else:
        records = launch.train_records(cfg)
        num_classes = len({r.pid for r in records})
        model = launch.prepare_model(cfg, num_classes, device, world, local)
        if rank == 0:
            atomic_write_text(out / "config.yaml", cfg.dump())
        trainer = Trainer(cfg, model, records, launch.test_sets(cfg) if rank == 0 else [], out, device, rank, world,
                          progress=progress)
        if resume and (out / "last.pth").exists():
            trainer.resume(out / "last.pth")
        trainer.train()
        evaluator = [h for h in trainer.hooks if hasattr(h, "results")]
        results = {}
        if evaluator and evaluator[0].results:
            last_epoch = evaluator[0].results[-1]["epoch"]
            results = {r["dataset"]: {k: v for k, v in r.items() if k not in ("epoch", "dataset")}
                       for r in evaluator[0].results if r["epoch"] == last_epoch}
    if rank != 0:
        return
    if as_json:
        print_json(results)
    else:
        for name, metrics in results.items():
            typer.echo(format_table(metrics, title=name))
