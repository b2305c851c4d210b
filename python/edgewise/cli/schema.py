"""`edgewise schema infer` and `edgewise validate`: a schema from a reference, and data checked
against it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .output import echo_json, json_option
from .profiles import load_side

# Exit code of `validate --fail-on-anomaly` when the data breaks the schema: distinct from
# errors (1), usage mistakes (2) and `drift --fail-on-drift` (3).
EXIT_ANOMALY = 4


@click.group("schema")
def schema_group() -> None:
    """Schemas: what each column of a dataset may hold.

    \b
    Example:
      edgewise schema infer training.ewprofile -o schema.json
    """


@schema_group.command("infer")
@click.argument("reference")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Schema file to write (JSON, replaced atomically).",
)
@click.option(
    "--margin",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Widen numeric ranges by this share of their width on each side.",
)
@click.option(
    "--sensitive",
    multiple=True,
    help="When profiling data: keep no raw values of this column (repeatable).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Threads to use [default: all cores].")
@json_option
def infer_command(
    reference: str,
    output: Path,
    margin: float,
    sensitive: tuple[str, ...],
    threads: int | None,
    as_json: bool,
) -> None:
    """Infer a schema from REFERENCE, a profile file or Parquet data (profiled on the way).

    Each column gets its kind and nullability; numeric columns their range and whether NaN or
    infinities occur; string columns their categories (up to 384). Edit the file by hand to
    loosen or tighten a rule (docs/drift.md).

    \b
    Example:
      edgewise schema infer training.ewprofile -o schema.json --margin 0.05
    """
    from ..profiles import infer_schema

    schema = infer_schema(
        load_side(reference, threads), margin=margin, sensitive=sensitive, threads=threads
    )
    schema.save(output)
    if as_json:
        echo_json(schema.to_json())
        return
    click.echo(f"inferred a schema of {len(schema.columns)} columns -> {output}")
    for column in schema.columns:
        rules = ["nullable" if column.nullable else "not null"]
        if column.range is not None:
            low, high = column.to_json()["range"]
            rules.append(f"range [{low}, {high}]")
        if column.domain is not None:
            rules.append(f"{len(column.domain)} categories")
        if column.comment:
            rules.append(column.comment)
        click.echo(f"  {column.name:24} {column.kind:14} {', '.join(rules)}")


@click.command("validate")
@click.argument("data", nargs=-1, required=True)
@click.option(
    "--schema",
    "schema_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Schema file to check against (from `edgewise schema infer`).",
)
@click.option(
    "--reference",
    metavar="PROFILE_OR_DATA",
    help="Or a profile file or Parquet data to infer the schema from on the fly.",
)
@click.option(
    "--fail-on-anomaly",
    is_flag=True,
    help=f"Exit with code {EXIT_ANOMALY} when the data breaks the schema (for CI gates).",
)
@click.option("--threads", type=click.IntRange(min=1), help="Threads to use [default: all cores].")
@json_option
def validate_command(
    data: tuple[str, ...],
    schema_path: Path | None,
    reference: str | None,
    fail_on_anomaly: bool,
    threads: int | None,
    as_json: bool,
) -> None:
    """Check Parquet DATA (files, directories or glob patterns) against a schema.

    Counts, per column, the rows that break a rule: missing column, wrong type, nulls, NaN or
    infinities, values outside the range, categories outside the domain. Columns the schema
    does not list are reported as warnings; everything else is an error.

    \b
    Example:
      edgewise validate 'data/2026-11-*.parquet' --schema schema.json --fail-on-anomaly
    """
    from ..profiles import validate

    if (schema_path is None) == (reference is None):
        raise click.UsageError("give exactly one of --schema and --reference")
    report = validate(
        list(data),
        schema=schema_path,
        reference=None if reference is None else load_side(reference, threads),
        threads=threads,
    )
    if as_json:
        echo_json(report.to_json())
    else:
        for anomaly in report.anomalies:
            details = [f"{anomaly.share:.2%} of rows"]
            if anomaly.first_row is not None:
                details.append(f"first at row {anomaly.first_row:,}")
            if anomaly.examples:
                # Categories are quoted: they may hold commas and spaces.
                quoted = anomaly.type == "unknown_category"
                shown = [repr(e) if quoted else e for e in anomaly.examples]
                details.append(f"e.g. {', '.join(shown)}")
            click.echo(
                f"  {anomaly.severity.upper():7} {anomaly.column:24} {anomaly.type:18} "
                f"{anomaly.message} ({'; '.join(details)})"
            )
        errors, warnings = len(report.errors), len(report.warnings)
        verdict = "the data matches the schema" if report.ok else "the data breaks the schema"
        counts = f"{errors} error{'' if errors == 1 else 's'}, "
        counts += f"{warnings} warning{'' if warnings == 1 else 's'}"
        click.echo(f"{counts} in {report.rows:,} rows: {verdict}")
    if fail_on_anomaly and not report.ok:
        sys.exit(EXIT_ANOMALY)
