"""What every subcommand shares: turning expected errors into a one-line message and exit 2."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer

from ..config import ConfigError
from ..data.datasets import DatasetError

USER_ERRORS = (ConfigError, DatasetError, FileNotFoundError, ValueError)


def user_errors(fn: Callable) -> Callable:
    """Report bad input as ``error: ...`` on stderr with exit code 2, without a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    return wrapper


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, sort_keys=False)
    sys.stdout.write("\n")
