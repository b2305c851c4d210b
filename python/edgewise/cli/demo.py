"""`edgewise demo`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--rows",
    default=2_000_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows to score.",
)
@click.option(
    "--train-rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=100),
    help="Rows to train on.",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's files here [default: a temporary directory].",
)
def demo_command(rows: int, train_rows: int, workdir: Path | None) -> None:
    """Run the main story on this machine: train, compile, sign, verify and score.

    \b
    Example:
      edgewise demo --rows 500000 --dir /tmp/edgewise-demo
    """
    from ..demo import run_demo

    if workdir is not None:
        run_demo(workdir, rows=rows, train_rows=train_rows, say=click.echo)
        return
    with tempfile.TemporaryDirectory(prefix="edgewise-demo-") as tmp:
        run_demo(Path(tmp), rows=rows, train_rows=train_rows, say=click.echo)
