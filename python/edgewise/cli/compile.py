"""`edgewise compile`: fitted pipeline to verified bundle."""

from __future__ import annotations

from pathlib import Path

import click

from .output import echo_json, json_option


@click.command("compile")
@click.argument("pipeline", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--train-data",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Parquet file the pipeline was trained on (schema, verification, health sample).",
)
@click.option("--name", required=True, help="Bundle name, e.g. churn.")
@click.option(
    "--version", "version", required=True, type=click.IntRange(min=0), help="Integer version."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Bundle path [default: NAME-VERSION.ewb].",
)
@click.option("--target", help="Label column in the training data; adds quality metrics.")
@click.option(
    "--max-diff",
    type=click.FloatRange(min=0),
    help="Refuse to write the bundle if any verified score differs by more than this.",
)
@click.option(
    "--sample-rows",
    default=5000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Training rows used to verify the converted model.",
)
@json_option
def compile_command(
    pipeline: Path,
    train_data: Path,
    name: str,
    version: int,
    output: Path | None,
    target: str | None,
    max_diff: float | None,
    sample_rows: int,
    as_json: bool,
) -> None:
    """Compile a fitted scikit-learn PIPELINE into a verified bundle (.ewb).

    PIPELINE is an estimator, Pipeline or ColumnTransformer pipeline saved with joblib or
    pickle and fitted on a pandas DataFrame. Loading a pickle runs code from the file:
    compile only pipelines you trust.

    The pipeline is converted to ONNX, scored side by side with the original on a sample of
    the training data, and the differences are printed and recorded in the manifest.

    \b
    Example:
      edgewise compile churn.joblib --train-data train.parquet --name churn --version 3 \\
          --target churned --max-diff 1e-3
    """
    from ..compile import compile_pipeline, describe_source, load_pipeline, read_training_data

    output = output or Path(f"{name}-{version}.ewb")
    fitted = load_pipeline(pipeline)
    train = read_training_data(train_data)
    result = compile_pipeline(
        fitted,
        train,
        name=name,
        version=version,
        target=target,
        max_diff=max_diff,
        sample_rows=sample_rows,
        lineage={
            "training_data": {**describe_source(train_data), "rows": len(train)},
            "pipeline_file": describe_source(pipeline),
        },
    )
    result.bundle.write(output)
    if as_json:
        echo_json({"bundle": str(output), "manifest": result.bundle.manifest})
        return
    manifest = result.bundle.manifest
    click.echo(f"compiled {name} version {version} ({manifest['lineage']['estimator']})")
    click.echo(f"  inputs:   {len(manifest['schema'])} columns")
    click.echo(f"  fidelity: {result.fidelity.describe()}")
    metrics = manifest["lineage"]["metrics"]
    if metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        click.echo(f"  metrics:  {shown} (on {metrics['data']})")
    click.echo(f"  wrote {output} ({output.stat().st_size:,} bytes)")
