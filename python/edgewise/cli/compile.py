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
    help="Refuse to write the bundle if any verified score on the default engine differs by "
    "more than this.",
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

    The pipeline is converted to ONNX: an exact float64 graph when every step has one
    (scalers, SimpleImputer, one-hot and ordinal encoders, linear models, tree ensembles),
    otherwise a float32 graph. It is scored side by side with the original on a sample of the
    training data on each engine (native, onnxruntime); the differences are printed and
    recorded in the manifest. The native engine runs the bundle when it can load the graph.

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
    engine = manifest["engine"]
    click.echo(f"compiled {name} version {version} ({manifest['lineage']['estimator']})")
    click.echo(f"  inputs:   {len(manifest['schema'])} columns")
    click.echo(f"  graph:    {engine['graph']} ({engine['graph_reason']})")
    click.echo(f"  engine:   {engine['name']} ({engine['reason']})")
    # The default engine first: its fidelity is the one --max-diff checked.
    by_engine = sorted(result.fidelity_by_engine.items(), key=lambda e: e[0] != engine["name"])
    for i, (engine_name, fidelity) in enumerate(by_engine):
        text = fidelity.describe() if fidelity else f"{engine_name}: cannot run this graph"
        click.echo(f"  {'fidelity:' if i == 0 else '':9} {text}")
    metrics = manifest["lineage"]["metrics"]
    if metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        click.echo(f"  metrics:  {shown} (on {metrics['data']})")
    click.echo(f"  wrote {output} ({output.stat().st_size:,} bytes)")
