"""``reid extract``: ReID features of image files (fast-reid's ``demo/demo.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import check_device, user_errors


def split_inputs_and_opts(args: list[str]) -> tuple[list[str], list[str]]:
    """Positional words before ``--opts`` are inputs (a shell-expanded ``--input a b c``); after it,
    KEY VALUE config overrides."""
    if "--opts" in args:
        i = args.index("--opts")
        return args[:i], args[i + 1:]
    return args, []


def embed_with_progress(embedder, paths: list[Path], desc: str, quiet: bool):
    """``embedder.embed_files`` with a progress bar; also returns the images/s it reached."""
    import time

    from tqdm import tqdm

    start = time.perf_counter()
    with tqdm(total=len(paths), unit="img", desc=desc, disable=quiet) as bar:
        feats, ok, failed = embedder.embed_files(paths, progress=bar.update)
    return feats, ok, failed, len(paths) / max(time.perf_counter() - start, 1e-9)


def report_skipped(failed: list[tuple[int, str]] | list[str]) -> None:
    if failed:
        typer.echo(f"skipped {len(failed)} unreadable images:", err=True)
        for item in failed:
            typer.echo(f"  {item[1] if isinstance(item, tuple) else item}", err=True)


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
    import numpy as np

    from ..fileio import atomic_write, check_output_dir
    from ..inference.embedder import runtime_for
    from ..inference.files import expand_inputs, save_features
    from ..inference.preprocess import check_preprocess
    from ..inference.resolve import ModelSpec, resolve_embedder

    positional, opts = split_inputs_and_opts(list(args or []))
    wanted = list(inputs or []) + positional
    if not wanted:
        raise ValueError("no inputs: give image files, folders or glob patterns")
    check_output_dir(output, "--output")
    check_preprocess(preprocess)
    check_device(device)
    paths = expand_inputs(wanted)
    embedder = resolve_embedder(ModelSpec(config_file, tuple(opts), onnx=onnx, preprocess=preprocess, flip=flip),
                                batch_size=batch_size, device=device, runtime=runtime_for(len(paths), device))
    feats, ok, failed, speed = embed_with_progress(embedder, paths, "extract", quiet)
    if not ok:
        report_skipped(failed)
        raise ValueError(f"none of the {len(paths)} images could be read: nothing written")
    names = [str(paths[i]) for i in ok]
    if per_image:
        root = Path(_common_parent(paths))
        for name, f in zip(names, feats):
            target = output / Path(name).resolve().relative_to(root).with_suffix(".npy")
            atomic_write(target, lambda fh, f=f: np.save(fh, f))
        where = f"{len(names)} .npy files under {output}"
    else:
        where = str(save_features(output / "features.npz", names, feats))
    typer.echo(f"{len(names)} images -> {where} ({embedder.name} in {embedder.runtime}, dim {embedder.dim}, "
               f"{speed:.1f} images/s)")
    report_skipped(failed)


def _common_parent(paths: list[Path]) -> Path:
    import os

    resolved = [str(p.resolve().parent) for p in paths]
    return Path(os.path.commonpath(resolved))
