"""``reid extract``: ReID features of image files (fast-reid's ``demo/demo.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import load_model, user_errors


def split_inputs_and_opts(args: list[str]) -> tuple[list[str], list[str]]:
    """Positional words before ``--opts`` are inputs (a shell-expanded ``--input a b c``); after it,
    KEY VALUE config overrides."""
    if "--opts" in args:
        i = args.index("--opts")
        return args[:i], args[i + 1:]
    return args, []


def build_embedder(config_file: Optional[Path], opts: list[str], onnx: Optional[Path], preprocess: str,
                   flip: bool, batch_size: int, device: str, weights: Optional[Path] = None):
    """The embedder a command asked for: ONNX file, config + weights, a checkpoint, or the shipped default."""
    from ..inference import Embedder

    common = {"preprocess": preprocess, "flip": flip, "batch_size": batch_size}
    if onnx is not None:
        if config_file is not None or opts or weights is not None:
            raise ValueError("give either --onnx or a torch model (--config-file/--opts/--weights), not both")
        return Embedder.from_onnx(onnx, **common)
    model, cfg, weights = load_model(config_file, opts, weights, how="MODEL.WEIGHTS CHECKPOINT (after --opts)")
    return Embedder.from_model(model, tuple(cfg.INPUT.SIZE_TEST), device=device, name=weights.name, **common)


@user_errors
def extract(
    args: Optional[List[str]] = typer.Argument(None, metavar="[INPUT ...] [--opts KEY VALUE ...]",
                                               help="Image files, folders (searched recursively) or quoted glob "
                                                    "patterns; after --opts, config overrides."),
    inputs: Optional[List[str]] = typer.Option(None, "--input", "-i", help="An input (repeatable), as above."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for features.npz (or per-image .npy files)."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c",
                                               help="Model config; its MODEL.WEIGHTS (or --opts MODEL.WEIGHTS W) "
                                                    "is a reidkit or fast-reid checkpoint."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="An ONNX model from `reid export onnx`."),
    preprocess: str = typer.Option("loader", "--preprocess",
                                   help="Resizing: 'loader' (PIL bicubic, fast-reid's test loader) or 'demo' "
                                        "(OpenCV bicubic, fast-reid's demo.py)."),
    flip: bool = typer.Option(False, "--flip", help="Average each image's features with its mirror image's."),
    per_image: bool = typer.Option(False, "--per-image", help="One NAME.npy per image instead of features.npz."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (torch models)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Embed images with the default model (or --config-file/--onnx) and save their features.

    Writes OUTPUT/features.npz with `names`, `feats` (L2-normalised float32) and, when the file names follow Market-1501's `<id>_c<camera>` convention, `pids` and `camids`.

    Two such files (query, gallery) evaluate with `reid eval-features QUERY.npz --gallery GALLERY.npz`.
    """
    import time

    import numpy as np
    from tqdm import tqdm

    from ..fileio import atomic_write
    from ..inference.files import expand_inputs, save_features

    positional, opts = split_inputs_and_opts(list(args or []))
    wanted = list(inputs or []) + positional
    if not wanted:
        raise ValueError("no inputs: give image files, folders or glob patterns")
    paths = expand_inputs(wanted)
    embedder = build_embedder(config_file, opts, onnx, preprocess, flip, batch_size, device)
    start = time.perf_counter()
    with tqdm(total=len(paths), unit="img", desc="extract", disable=quiet) as bar:
        feats, ok, failed = embedder.embed_files(paths, progress=bar.update)
    seconds = time.perf_counter() - start
    names = [str(paths[i]) for i in ok]
    if per_image:
        root = Path(_common_parent(paths))
        for name, f in zip(names, feats):
            rel = Path(name).resolve().relative_to(root).with_suffix(".npy")
            target = output / rel
            atomic_write(target, lambda fh, f=f: np.save(fh, f))
        where = f"{len(names)} .npy files under {output}"
    else:
        where = str(save_features(output / "features.npz", names, feats))
    typer.echo(f"{len(names)} images -> {where} ({embedder.name}, dim {embedder.dim}, "
               f"{len(paths) / max(seconds, 1e-9):.1f} images/s)")
    if failed:
        typer.echo(f"skipped {len(failed)} unreadable images:", err=True)
        for _, reason in failed:
            typer.echo(f"  {reason}", err=True)


def _common_parent(paths: list[Path]) -> Path:
    import os

    resolved = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(resolved))
