"""``reid config show``: the merged configuration."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..config import load_config
from .common import print_json, user_errors

app = typer.Typer(help="Inspect configurations (fast-reid's YAML files load unchanged).", no_args_is_help=True)


@app.command("show", context_settings={"ignore_unknown_options": True, "allow_extra_args": False})
@user_errors
def show(
    config: Optional[Path] = typer.Argument(None, help="YAML config file; its _BASE_ files are merged first. "
                                                        "Omit it to print the defaults."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts] KEY VALUE ...",
                                               help="Overrides, e.g. SOLVER.BASE_LR 0.001 MODEL.DEVICE cpu."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of YAML."),
) -> None:
    """Print the configuration after merging CONFIG (with its _BASE_ chain) and the overrides."""
    opts = [o for o in (opts or []) if o != "--opts"]
    if config is not None and str(config) == "--opts":  # `reid config show --opts K V`: overrides of the defaults
        config = None
    cfg = load_config(config, opts)
    if as_json:
        print_json(cfg.to_dict())
    else:
        typer.echo(cfg.dump().rstrip())
