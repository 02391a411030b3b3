"""What every subcommand shares: turning expected errors into a one-line message and exit 2,
and checks of options that several commands take."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from typing import Any, Callable, Optional

import click
import typer

from ..config import ConfigError
from ..config.validate import DEVICE_PATTERN
from ..data.datasets import DatasetError
from ..retrieval.gallery import GalleryError
from ..retrieval.index import IndexFileError

USER_ERRORS = (ConfigError, DatasetError, GalleryError, IndexFileError, FileNotFoundError, ValueError,
               ConnectionError, OSError)
DEBUG_ENV = "REIDKIT_DEBUG"


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, ConnectionError)) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split("\n")[0].split()) if "\n" in text else text


def _quiet_broken_pipe() -> None:
    """stdout's reader went away (``reid ... | head``): stop quietly, as Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file descriptor (e.g. a test runner's buffer)
        pass
    raise typer.Exit(141)


def user_errors(fn: Callable) -> Callable:
    """Report bad input as one line ``error: ...`` on stderr with exit code 2, never a traceback.

    Anything else that goes wrong is a reidkit bug: one line saying so, exit code 1, and the
    traceback only with REIDKIT_DEBUG=1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:
            _quiet_broken_pipe()
        except USER_ERRORS as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            typer.echo(f"error: {_message(exc)}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            typer.echo(f"error: unexpected {type(exc).__name__}: {_message(exc)} (a reidkit bug: please report it "
                       f"with the traceback that {DEBUG_ENV}=1 shows)", err=True)
            raise typer.Exit(1) from None
    return wrapper


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, sort_keys=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def check_device(device: str, option: str = "--device") -> str:
    """``cpu``, ``cuda``, ``cuda:N`` or ``mps``; else a ValueError naming the option."""
    if not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"{option} {device!r}: expected cpu, cuda, cuda:N or mps")
    return device


def check_finite(value: Optional[float], option: str) -> Optional[float]:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{option} {value}: expected a finite number")
    return value


def plain_opts(opts: Optional[list[str]]) -> list[str]:
    """Config overrides from the command line without the ``--opts`` marker."""
    return [o for o in (opts or []) if o != "--opts"]
