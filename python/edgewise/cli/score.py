"""`edgewise score`: batch scoring of Parquet files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..engines import EngineChoice

from .bundle import TrustOptions, describe_trust, trust_options
from .output import echo_json, json_option, row_progress

#: The environment `edgewise score` runs with (each variable the environment does not set).
#: OpenBLAS starts no thread pool: scoring makes no BLAS call, and the pool cost about 40 ms
#: of CPU at numpy's import and spun beside the engine's threads. The core's allocator
#: (mimalloc) keeps the memory one batch freed for the next rather than handing it back to
#: the kernel, which would zero it again: 7,500 page faults instead of 50,000 and about 0.1 s
#: less system CPU on 4M rows, for a peak RSS 20 to 50 MB higher (BENCHMARKS.md). Nor does
#: the process take transparent huge pages (mimalloc disables them for it): a run touches its
#: ~160 MB of batches once, and each huge page's first touch zeroed 2 MB at once, at a cost
#: that swung from run to run on a VM guest (a 4M-row logistic run inside the benchmark:
#: 0.57-0.64 s in nine runs without them, 0.51-0.98 s and a median of 0.69 s in twelve with).
SCORE_ENVIRONMENT = {
    "OPENBLAS_NUM_THREADS": "1",
    "MIMALLOC_PURGE_DELAY": "-1",
    "MIMALLOC_ALLOW_THP": "0",
}


@click.command("score")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (created; must be empty unless --resume).",
)
@click.option("--keep", multiple=True, help="Input column to copy into the output (repeatable).")
@click.option("--strict", is_flag=True, help="Fail on the first row that cannot be scored.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run in the output directory.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads to use [default: all cores].")
@click.option(
    "--batch-rows",
    default=256 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows read and scored at a time (bounds memory).",
)
@click.option(
    "--compression",
    default="zstd",
    show_default=True,
    type=click.Choice(["zstd", "snappy", "none"]),
    help="Parquet compression of the output.",
)
@click.option(
    "--engine",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "native", "onnxruntime"]),
    help="What runs the model: auto takes the native engine whenever it covers the graph.",
)
@click.option(
    "--profile",
    "profile",
    is_flag=True,
    help="Profile the model inputs into OUTPUT/_edgewise_profile.ewprofile and warn when they "
    "drifted from the bundle's reference profile.",
)
@trust_options
@click.option(
    "--insecure-unsigned",
    is_flag=True,
    help="Score MODEL without verifying it (a bundle nobody vouched for, or a bare .onnx).",
)
@json_option
def score_command(
    model: Path,
    inputs: tuple[str, ...],
    output: Path,
    keep: tuple[str, ...],
    strict: bool,
    resume: bool,
    threads: int | None,
    batch_rows: int,
    compression: str,
    engine: EngineChoice,
    profile: bool,
    trust: TrustOptions,
    insecure_unsigned: bool,
    as_json: bool,
) -> None:
    """Score Parquet INPUTS (files, directories or glob patterns) with MODEL (.ewb or .onnx).

    MODEL must verify against a signed repository (--trust DIR --root root.json) unless
    --insecure-unsigned says to score it unverified.

    Scores go to OUTPUT as Parquet parts with the --keep columns, the scores, and the model
    name and version. Rows the model cannot score (nulls it cannot take, unknown categories)
    go to OUTPUT/quarantine/ with the reason, unless --strict. Parts appear under their final
    names only when complete, so a killed run continues with --resume.

    \b
    Example:
      edgewise score churn-3.ewb 'data/2026-11-*.parquet' -o scores/ --keep customer_id \\
        --profile --trust repo/ --root root.json
    """
    # Before numpy and the core are first imported, just below.
    for name, value in SCORE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    from ..model import Model
    from ..scoring import score

    if trust.given and insecure_unsigned:
        raise click.UsageError("--insecure-unsigned and --trust exclude each other")
    if trust.given:
        verified = trust.verify(model)
        loaded = Model.from_bundle(verified.bundle, threads=threads, engine=engine)
        click.echo(f"trusted: {describe_trust(verified)}", err=True)
    elif insecure_unsigned:
        loaded = Model.load(model, threads=threads, engine=engine)
        click.echo(f"warning: {model} is not verified (--insecure-unsigned)", err=True)
    else:
        raise click.UsageError(
            f"{model} is not verified: give --trust DIR --root root.json, or "
            "--insecure-unsigned to score a model nobody vouched for"
        )
    with row_progress(not as_json, f"scoring with {loaded.name} v{loaded.version}") as progress:
        summary = score(
            loaded,
            inputs,
            output,
            keep=keep,
            strict=strict,
            resume=resume,
            threads=threads,
            batch_rows=batch_rows,
            compression=compression,
            profile=profile,
            progress=progress,
        )
    if as_json:
        echo_json(summary.to_json())
        return
    click.echo(
        f"scored {summary.rows_scored:,} of {summary.rows_read:,} rows from {summary.files} "
        f"file(s) in {summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s, "
        f"{summary.engine})"
    )
    if summary.rows_quarantined:
        click.echo(f"quarantined {summary.rows_quarantined:,} rows: {output / 'quarantine'}")
    if summary.drifted_columns:
        click.echo(
            f"warning: the scored data drifted from the training data in "
            f"{len(summary.drifted_columns)} column(s): {', '.join(summary.drifted_columns)} "
            f"(edgewise drift {model} {output / '_edgewise_profile.ewprofile'} --html report.html)",
            err=True,
        )
    elif profile and loaded.reference is None:
        click.echo("note: the bundle has no reference profile, so drift was not checked", err=True)
    if summary.parts_resumed:
        click.echo(f"resumed: {summary.parts_resumed} of {summary.parts} parts were already done")
    click.echo(f"output: {output}")
