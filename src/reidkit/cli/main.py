"""Entry point of the ``reid`` command: one sub-command per module of this package."""

from __future__ import annotations

import typer

from . import config_cmd, data_cmd, export_cmd, gallery_cmd
from .adapt_cmd import adapt
from .demo_cmd import demo
from .eval_cmd import eval_features
from .eval_model_cmd import eval_model
from .extract_cmd import extract
from .mtmc_cmd import mtmc, mtmc_eval
from .serve_cmd import serve
from .track_cmd import track, track_eval
from .train_cmd import train
from .visualize_cmd import visualize

app = typer.Typer(
    help="reidkit: re-identify people across cameras. Configs, datasets, training, evaluation, "
         "feature extraction, export and searchable galleries.\n\n"
         "Start with `reid demo`, then `reid extract IMAGES -o OUT` or `reid eval --root DATASET`.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(export_cmd.app, name="export")
app.add_typer(gallery_cmd.app, name="gallery")
app.command("eval-features", context_settings={"ignore_unknown_options": True})(eval_features)
app.command("demo")(demo)
app.command("train", context_settings={"ignore_unknown_options": True})(train)
app.command("eval", context_settings={"ignore_unknown_options": True})(eval_model)
app.command("extract", context_settings={"ignore_unknown_options": True})(extract)
app.command("visualize", context_settings={"ignore_unknown_options": True})(visualize)
app.command("track")(track)
app.command("track-eval")(track_eval)
app.command("adapt")(adapt)
app.command("mtmc")(mtmc)
app.command("mtmc-eval")(mtmc_eval)
app.command("serve")(serve)

if __name__ == "__main__":
    app()
