"""The command line: exit codes, exact messages, and --help with an example everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import click
import joblib
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from edgewise.cli import main
from edgewise.datasets import credit_frame


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def compile_inputs(tmp_path, credit_model, credit_train) -> tuple[Path, Path]:
    """The fitted pipeline as a joblib file and its training data as Parquet."""
    pipeline = tmp_path / "credit.joblib"
    joblib.dump(credit_model, pipeline)
    train = tmp_path / "train.parquet"
    credit_train.to_parquet(train, index=False)
    return pipeline, train


def compile_args(
    pipeline: Path, train: Path, *extra: str, name: str = "x", version: int = 1
) -> list[str]:
    """Arguments of `edgewise compile` for `pipeline` trained on `train`."""
    return [
        "compile",
        str(pipeline),
        "--train-data",
        str(train),
        "--name",
        name,
        "--version",
        str(version),
        *extra,
    ]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    context = click.Context(group)  # the root group loads its commands lazily
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(main)), ids=" ".join)
def test_every_command_has_help_with_an_example(runner, path):
    result = runner.invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and f"edgewise {' '.join(path)}" in result.output


def test_compile_then_score(runner, tmp_path, compile_inputs):
    pipeline, train = compile_inputs
    bundle = tmp_path / "credit-7.ewb"
    result = runner.invoke(
        main,
        compile_args(
            pipeline, train, "-o", str(bundle), "--target", "defaulted", name="credit", version=7
        ),
    )
    assert result.exit_code == 0, result.output
    assert "compiled credit version 7 (LogisticRegression)" in result.output
    assert "engine:   native (the native engine runs this graph)" in result.output
    assert "fidelity: native: max |diff|" in result.output
    assert "onnxruntime: max |diff|" in result.output
    assert f"wrote {bundle}" in result.output

    source = tmp_path / "in.parquet"
    credit_frame(1000, seed=3).to_parquet(source, index=False)
    out = tmp_path / "scores"
    result = runner.invoke(
        main,
        ["score", str(bundle), str(source), "-o", str(out), "--json", "--insecure-unsigned"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stderr carries the --insecure-unsigned warning
    assert summary["rows_scored"] == 1000 and summary["model"] == "credit"
    assert pq.read_table(out / "part-00000-00000.parquet").num_rows == 1000


def test_compile_refuses_when_fidelity_is_worse_than_max_diff(runner, tmp_path, compile_inputs):
    pipeline, train = compile_inputs
    result = runner.invoke(
        main, compile_args(pipeline, train, "-o", str(tmp_path / "c.ewb"), "--max-diff", "0")
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: the converted model differs from the pipeline by up to")
    assert "bundle not written" in result.output
    assert not (tmp_path / "c.ewb").exists()


def test_compile_of_a_missing_pipeline(runner, tmp_path):
    result = runner.invoke(main, compile_args(tmp_path / "nope.joblib", tmp_path / "t.parquet"))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'nope.joblib'}: no such file\n"


def test_score_bad_input_exits_1_naming_file_and_column(runner, tmp_path, bundle_path):
    source = tmp_path / "in.parquet"
    credit_frame(10).drop(columns=["region"]).to_parquet(source, index=False)
    result = runner.invoke(
        main,
        ["score", str(bundle_path), str(source), "-o", str(tmp_path / "o"), "--insecure-unsigned"],
    )
    assert result.exit_code == 1
    assert result.output == (
        f"warning: {bundle_path} is not verified (--insecure-unsigned)\n"
        f"Error: {source}: column 'region': missing from the file\n"
    )


def test_score_usage_error_exits_2(runner, bundle_path):
    result = runner.invoke(main, ["score", str(bundle_path), "x.parquet"])
    assert result.exit_code == 2
    assert "Missing option '-o' / '--output'" in result.output


def test_debug_shows_the_traceback(runner, tmp_path, bundle_path):
    result = runner.invoke(
        main,
        [
            "--debug",
            "score",
            str(bundle_path),
            str(tmp_path / "none.parquet"),
            "-o",
            "o",
            "--insecure-unsigned",
        ],
    )
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "DataFileError"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x80\x04junk that is not a pickle", "not a joblib or pickle file"),
        (None, "holds a dict, not a fitted estimator"),
    ],
    ids=["damaged", "not-an-estimator"],
)
def test_compile_of_a_bad_pipeline_file(runner, tmp_path, content, message):
    path = tmp_path / "bad.joblib"
    if content is None:
        joblib.dump({"weights": [1, 2]}, path)
    else:
        path.write_bytes(content)
    result = runner.invoke(main, compile_args(path, tmp_path / "t.parquet"))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: {message}")


def test_progress_shows_rows_per_second():
    from edgewise.cli.progress import RowRateColumn

    column = RowRateColumn()
    unmeasured = SimpleNamespace(finished_speed=None, speed=None)
    running = SimpleNamespace(finished_speed=None, speed=812345.6)
    finished = SimpleNamespace(finished_speed=900000.0, speed=None)
    assert column.render(unmeasured).plain == ""  # type: ignore[arg-type]
    assert column.render(running).plain == "812,346 rows/s"  # type: ignore[arg-type]
    assert column.render(finished).plain == "900,000 rows/s"  # type: ignore[arg-type]
