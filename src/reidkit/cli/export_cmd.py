"""``reid export onnx``: a model as ONNX with a dynamic batch axis, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import user_errors

app = typer.Typer(help="Export a model for deployment.", no_args_is_help=True)


def load_torch_model(config_file: Optional[Path], opts: list[str], weights: Optional[Path]):
    """(model, config) from a config + weights, a reidkit checkpoint, or the shipped default."""
    from ..checkpoint import model_from_checkpoint, model_from_config
    from ..config import load_config
    from ..weights import default_weights

    if config_file is not None:
        cfg = load_config(config_file, opts, freeze=False)
        weights = weights or cfg.MODEL.WEIGHTS or None
        if weights is None:
            raise ValueError(f"{config_file}: give the weights with MODEL.WEIGHTS CHECKPOINT or --weights")
        return model_from_config(cfg, weights)
    if opts:
        raise ValueError(f"config overrides {' '.join(opts)} need --config-file")
    return model_from_checkpoint(weights or default_weights())


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
    model, cfg = load_torch_model(config_file, opts, weights)
    size = tuple(cfg.INPUT.SIZE_TEST)
    source = str(weights or cfg.MODEL.WEIGHTS or "reidkit default model")
    path = export_onnx(model, size, output, opset=opset,
                       metadata={"reidkit.weights": source, "reidkit.backbone": cfg.MODEL.BACKBONE.NAME})
    real = expand_inputs([images or MARKET1501_MINI / "query"])[:64]
    for name, batch in (("random", random_batch(size, 8)), (f"{len(real)} real", real_batch(real, size))):
        raw, unit = max_abs_difference(model, path, batch)
        typer.echo(f"max |torch - onnx| on {name} images: {raw:.2e} (raw features), {unit:.2e} (normalised)")
    typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB, input {size[0]}x{size[1]}, dynamic batch)")
