"""`edgewise demo`."""

from __future__ import annotations

import logging
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
    "--devices",
    default=24,
    show_default=True,
    type=click.IntRange(min=0, max=200),
    help="Simulated devices for the fleet half of the story (0: batch scoring only).",
)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's files here [default: a temporary directory].",
)
def demo_command(rows: int, train_rows: int, devices: int, workdir: Path | None) -> None:
    """Run the main story on this machine with embedded defaults.

    Train a credit-risk pipeline, compile, sign, verify and score Parquet with it; then start an
    embedded broker, the control plane and simulated devices, roll the model out in waves, watch
    injected drift raise an alert, and watch a bad second version halt on its canaries.

    \b
    Example:
      edgewise demo --rows 500000 --dir /tmp/edgewise-demo
    """
    from ..demo import run_demo

    # The story narrates; the parts' own warnings (a halted rollout, a failed install) are
    # part of it and would only repeat it.
    logging.basicConfig(level=logging.ERROR)

    if workdir is not None:
        run_demo(workdir, rows=rows, train_rows=train_rows, devices=devices, say=click.echo)
        return
    with tempfile.TemporaryDirectory(prefix="edgewise-demo-") as tmp:
        run_demo(Path(tmp), rows=rows, train_rows=train_rows, devices=devices, say=click.echo)
