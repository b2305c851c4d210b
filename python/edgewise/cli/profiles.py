"""`edgewise profile` and `edgewise drift`: data profiles and the drift between them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from .output import echo_json, json_option

PROFILE_MAGIC = b"EWPF"
# Exit code of `drift --fail-on-drift` when the data drifted: distinct from errors (1) and
# usage mistakes (2), so a CI gate can tell them apart.
EXIT_DRIFT = 3


def load_side(argument: str, threads: int | None) -> Any:
    """A saved profile (by its magic bytes), a bundle's reference profile, or data for
    `edgewise.profile` to read."""
    from ..bundle import Bundle
    from ..exceptions import BundleError
    from ..profiles import Profile

    path = Path(argument)
    if path.suffix == ".ewb":
        bundle = Bundle.read(path)
        if bundle.reference is None:
            raise BundleError(f"{path}: the bundle has no reference profile")
        return Profile.from_bytes(bundle.reference, threads)
    if path.is_file():
        with path.open("rb") as file:
            if file.read(len(PROFILE_MAGIC)) == PROFILE_MAGIC:
                return Profile.from_bytes(path.read_bytes(), threads)
    return argument


@click.command("profile")
@click.argument("data", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Profile file to write (replaced atomically).",
)
@click.option("--column", "columns", multiple=True, help="Profile only this column (repeatable).")
@click.option("--sensitive", multiple=True, help="Keep no raw values of this column (repeatable).")
@click.option(
    "-k", default=200, show_default=True, type=click.IntRange(8, 65535), help="KLL accuracy."
)
@click.option("--threads", type=click.IntRange(min=1), help="Threads to use [default: all cores].")
@json_option
def profile_command(
    data: tuple[str, ...],
    output: Path,
    columns: tuple[str, ...],
    sensitive: tuple[str, ...],
    k: int,
    threads: int | None,
    as_json: bool,
) -> None:
    """Profile Parquet DATA (files, directories or glob patterns) into a mergeable profile.

    \b
    Example:
      edgewise profile 'data/2026-11-*.parquet' -o november.ewprofile --sensitive email
    """
    from ..bundle import write_atomic
    from ..profiles import profile

    built = profile(
        list(data), columns=list(columns) or None, sensitive=sensitive, k=k, threads=threads
    )
    write_atomic(output, built.to_bytes())
    if as_json:
        echo_json({"rows": built.rows, "output": str(output), "columns": built.summary()})
        return
    sizes = dict(built.column_sizes())
    click.echo(f"profiled {built.rows:,} rows, {len(sizes)} columns -> {output}")
    for column in built.summary():
        click.echo(f"  {column['name']:24} {column['kind']:14} {_describe(column)}")


def _describe(column: dict[str, Any]) -> str:
    nulls = f"nulls {column['nulls']:,}"
    if "mean" in column and column["mean"] is not None:
        return f"{nulls}, mean {column['mean']:.4g}, std {column['std'] or 0:.4g}"
    if column.get("top"):
        label, count = column["top"][0]
        return f"{nulls}, ~{column['distinct']:,.0f} distinct, top {label!r} ({count:,})"
    if "true" in column:
        return f"{nulls}, true {column['true']:,}, false {column['false']:,}"
    return nulls


@click.command("drift")
@click.argument("reference")
@click.argument("current")
@click.option(
    "--html", "html", type=click.Path(dir_okay=False, path_type=Path), help="Write an HTML report."
)
@click.option(
    "--fail-on-drift",
    is_flag=True,
    help=f"Exit with code {EXIT_DRIFT} when the data drifted (for CI gates).",
)
@click.option(
    "--drift-share",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="The data drifted when at least this share of columns did.",
)
@click.option(
    "--exact",
    is_flag=True,
    help="Also compute every metric on all the values (both sides data; holds them in memory).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Threads to use [default: all cores].")
@json_option
def drift_command(
    reference: str,
    current: str,
    html: Path | None,
    fail_on_drift: bool,
    drift_share: float,
    exact: bool,
    threads: int | None,
    as_json: bool,
) -> None:
    """Compare CURRENT with REFERENCE, each a profile file, a bundle (its training data's
    profile) or Parquet data.

    Numeric columns drift when the Wasserstein distance exceeds 0.1 reference standard
    deviations, categorical ones when the Jensen-Shannon distance of their shares exceeds 0.05
    (docs/drift.md).

    \b
    Example:
      edgewise drift churn-3.ewb 'data/2026-11-*.parquet' --html drift.html --fail-on-drift
    """
    from ..bundle import write_atomic
    from ..profiles import drift

    report = drift(
        load_side(reference, threads),
        load_side(current, threads),
        drift_share=drift_share,
        threads=threads,
        exact=exact,
    )
    if html is not None:
        write_atomic(html, report.to_html().encode())
    if as_json:
        echo_json(report.to_json())
    else:
        for column in report.columns:
            verdict = "DRIFT" if column.drifted else "ok"
            click.echo(
                f"  {verdict:5} {column.name:24} {column.kind:12} {column.method} "
                f"{column.score:.4f} (threshold {column.threshold:g})"
            )
        click.echo(
            f"{len(report.drifted_columns)} of {len(report.columns)} columns drifted: "
            f"the data {'drifted' if report.drifted else 'did not drift'}"
            + (f"; report: {html}" if html else "")
        )
    if fail_on_drift and report.drifted:
        sys.exit(EXIT_DRIFT)
