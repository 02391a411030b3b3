"""``reid export onnx``: a model as ONNX with a dynamic batch axis, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import load_model, user_errors

app = typer.Typer(help="Export a model for deployment.", no_args_is_help=True)


@app.command("onnx", context_settings={"ignore_unknown_options": True})
@user_errors
def onnx(
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...",
                                               help="Config overrides, e.g. MODEL.WEIGHTS model.pth."),
    output: Path = typer.Option(..., "--output", "-o", help="The .onnx file to write."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c", help="Model config (fast-reid's too)."),
    weights: Optional[Path] = typer.Option(None, "--weights", "-w",
                                           help="Checkpoint (default: MODEL.WEIGHTS, else the shipped model)."),
    images: Optional[Path] = typer.Option(None, "--images",
                                          help="Folder of real crops to compare torch and ONNX on "
                                               "(default: the Market-1501 sample shipped with reidkit)."),
    opset: int = typer.Option(17, "--opset", help="ONNX opset version."),
) -> None:
    """Write the model as ONNX (input `images`: N x 3 x H x W, RGB 0-255; output `features`) and
    print its largest difference from torch on random and real images."""
    from ..export.onnx_model import export_onnx, max_abs_difference, random_batch, real_batch
    from ..inference.files import expand_inputs
    from ..samples import MARKET1501_MINI

    opts = [o for o in (opts or []) if o != "--opts"]
    model, cfg, source = load_model(config_file, opts, weights)
    size = tuple(cfg.INPUT.SIZE_TEST)
    path = export_onnx(model, size, output, opset=opset,
                       metadata={"reidkit.weights": str(source), "reidkit.backbone": cfg.MODEL.BACKBONE.NAME})
    real = expand_inputs([images or MARKET1501_MINI / "query"])[:64]
    for name, batch in (("random", random_batch(size, 8)), (f"{len(real)} real", real_batch(real, size))):
        raw, unit = max_abs_difference(model, path, batch)
        typer.echo(f"max |torch - onnx| on {name} images: {raw:.2e} (raw features), {unit:.2e} (normalised)")
    typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB, input {size[0]}x{size[1]}, dynamic batch)")
