"""Shared CLI output helpers: JSON for scripts, rich progress for people at a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

F = Callable[..., Any]


class RowRateColumn(ProgressColumn):
    """Throughput in rows per second, once there is enough to measure."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} rows/s", style="progress.data.speed")


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
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        RowRateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
