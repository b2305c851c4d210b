"""Shared CLI output helpers: JSON for scripts, rich progress for people at a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

F = Callable[..., Any]


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")(command)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@contextmanager
def row_progress(enabled: bool, description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal, else nothing."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    # rich costs about a tenth of a second to import: only a terminal pays for it.
    from .progress import row_progress_bar

    with row_progress_bar(description) as update:
        yield update
