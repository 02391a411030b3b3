"""``reid export onnx``: a model as ONNX with a dynamic batch axis, checked against torch."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import plain_opts, user_errors

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
    opset: int = typer.Option(17, "--opset", help="ONNX opset version (11 to what this torch exports, 20)."),
) -> None:
    """Write the model as ONNX (input `images`: N x 3 x H x W, RGB 0-255; output `features`) and
    print its largest difference from torch on random and real images. Nothing is written unless
    the export and the comparison succeed."""
    from ..export.onnx_model import check_opset, max_abs_difference, onnx_bytes, random_batch, real_batch
    from ..fileio import atomic_write, check_output_file
    from ..inference.files import expand_inputs
    from ..inference.resolve import ModelSpec, load_model
    from ..samples import MARKET1501_MINI
    from .extract_cmd import report_skipped

    check_output_file(output, "--output")
    check_opset(opset)
    paths = expand_inputs([images or MARKET1501_MINI / "query"])[:64]
    model, cfg, source, card = load_model(ModelSpec(config_file, tuple(plain_opts(opts)), weights))
    size = card.input_size
    real, failed = real_batch(paths, size)
    if not len(real):
        report_skipped(failed)
        raise ValueError(f"none of the images in {images} could be read: nothing to compare torch and ONNX on")
    data = onnx_bytes(model, size, opset=opset, card=card,
                      metadata={"reidkit.weights": str(source), "reidkit.backbone": cfg.MODEL.BACKBONE.NAME})
    for name, batch in (("random", random_batch(size, 8)), (f"{len(real)} real", real)):
        raw, unit = max_abs_difference(model, data, batch)
        typer.echo(f"max |torch - onnx| on {name} images: {raw:.2e} (raw features), {unit:.2e} (normalised)")
    path = atomic_write(output, lambda f: f.write(data))
    typer.echo(f"wrote {path} ({len(data) / 2**20:.1f} MB, input {size[0]}x{size[1]}, dynamic batch)")
    report_skipped(failed)
