"""Drift from profiles: verdicts on data with known shifts, agreement with the exact metrics,
and the `edgewise drift` / `edgewise profile` commands."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import edgewise
from edgewise._core import drift_exact_categorical, drift_exact_numeric
from edgewise.cli import main
from edgewise.datasets import drift_frames

ROWS = 300_000


@pytest.fixture(scope="module")
def frames():
    reference, current, shifts = drift_frames(ROWS, seed=7)
    return (
        pa.Table.from_pandas(reference, preserve_index=False),
        pa.Table.from_pandas(current, preserve_index=False),
        shifts,
    )


@pytest.fixture(scope="module")
def report(frames):
    reference, current, _ = frames
    return edgewise.drift(reference, current, exact=True)


def test_every_shifted_column_and_no_unchanged_one_is_flagged(frames, report):
    _, _, shifts = frames
    flagged = {column.name for column in report.drifted_columns}
    assert flagged == set(shifts), {c.name: round(c.score, 4) for c in report.columns}
    # 5 of 15 columns is below the default drift share of one half.
    assert not report.drifted
    assert edgewise.drift(*frames[:2], drift_share=0.3).drifted


def test_profile_metrics_stay_within_the_sketch_error_of_the_exact_ones(frames, report):
    reference, current, _ = frames
    for column in report.columns:
        if column.kind not in ("numeric", "discrete"):
            continue
        ref = reference[column.name].to_numpy(zero_copy_only=False).astype(np.float64)
        cur = current[column.name].to_numpy(zero_copy_only=False).astype(np.float64)
        exact = drift_exact_numeric(ref, cur)
        assert column.exact == exact, column.name  # the public exact mode computes the same
        band = column.metrics["ks_band"]
        assert abs(column.metrics["ks"] - exact["ks"]) <= band + 1e-12, column.name
        # The Wasserstein distance integrates the CDF error over the range of the values.
        summary = report.summaries[column.name][0]
        spread = (summary["max"] - summary["min"]) / summary["std"]
        assert abs(column.score - exact["wasserstein_normed"]) <= band * spread + 1e-12, column.name
        if column.kind == "discrete":  # exact counts: exact metrics
            assert column.score == pytest.approx(exact["wasserstein_normed"], rel=1e-9)
            assert column.metrics["ks"] == pytest.approx(exact["ks"], abs=1e-12)
    for column in (c for c in report.columns if c.kind == "categorical"):
        exact = drift_exact_categorical(
            reference[column.name].to_pylist(), current[column.name].to_pylist()
        )
        assert column.exact == exact, column.name
        assert column.score == pytest.approx(exact["js"], abs=1e-12)
        assert column.metrics["chi2"] == pytest.approx(exact["chi2"]["statistic"], rel=1e-9)


def test_exact_mode_covers_every_column_and_needs_data(frames, report, tmp_path):
    reference, current, _ = frames
    assert all(column.exact is not None for column in report.columns)
    flags = next(c for c in report.columns if c.kind == "boolean")
    assert set(flags.exact["chi2"]) >= {"statistic", "p_value"}
    json.dumps(report.to_json(), allow_nan=False)  # strict JSON, exact metrics included
    with pytest.raises(ValueError, match="needs the data on both sides"):
        edgewise.drift(edgewise.profile(reference), current, exact=True)
    # Parquet files and the command line
    pq.write_table(reference.slice(0, 5000), tmp_path / "ref.parquet")
    pq.write_table(current.slice(0, 5000), tmp_path / "cur.parquet")
    result = CliRunner().invoke(
        main,
        [
            "drift",
            str(tmp_path / "ref.parquet"),
            str(tmp_path / "cur.parquet"),
            "--exact",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    columns = json.loads(result.output)["columns"]
    assert {column["name"] for column in columns if "ks" in column["exact"]} >= {"amount"}


def test_small_samples_of_one_distribution_are_not_called_drift():
    rng = np.random.default_rng(0)
    for _ in range(20):
        reference = pa.table({"x": rng.normal(size=60), "c": rng.choice(list("abcde"), 60)})
        current = pa.table({"x": rng.normal(size=60), "c": rng.choice(list("abcde"), 60)})
        assert not edgewise.drift(reference, current).drifted_columns


def test_columns_on_one_side_only_are_reported_as_drifted():
    reference = pa.table({"x": [1.0, 2.0, 3.0], "old": ["a", "b", "c"]})
    current = pa.table({"x": [1.0, 2.0, 3.0], "new": [1, 2, 3]})
    report = edgewise.drift(reference, current)
    verdicts = {c.name: (c.method, c.drifted) for c in report.columns}
    assert verdicts == {
        "x": ("wasserstein_normed", False),
        "old": ("missing in current", True),
        "new": ("missing in reference", True),
    }
    assert json.dumps(report.to_json(), allow_nan=False)


def test_profile_and_drift_commands(tmp_path, frames):
    reference, current, shifts = frames
    pq.write_table(reference, tmp_path / "reference.parquet")
    pq.write_table(current, tmp_path / "current.parquet")
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["profile", str(tmp_path / "reference.parquet"), "-o", str(tmp_path / "ref.ewprofile")],
    )
    assert result.exit_code == 0, result.output
    assert f"profiled {ROWS:,} rows, 15 columns" in result.output
    gate = [
        "drift",
        str(tmp_path / "ref.ewprofile"),
        str(tmp_path / "current.parquet"),
        "--html",
        str(tmp_path / "drift.html"),
        "--fail-on-drift",
    ]
    result = runner.invoke(main, gate)
    assert result.exit_code == 0, result.output
    assert "5 of 15 columns drifted: the data did not drift" in result.output
    result = runner.invoke(main, [*gate, "--drift-share", "0.3", "--json"])
    assert result.exit_code == 3, result.output
    document = json.loads(result.output)
    assert {c["name"] for c in document["columns"] if c["drifted"]} == set(shifts)
    page = (tmp_path / "drift.html").read_text()
    for name in shifts:
        assert f'data-column="{name}" data-drifted="true"' in page
    (tmp_path / "bad.ewprofile").write_bytes(b"EWPF\x07\x00")
    result = runner.invoke(
        main, ["drift", str(tmp_path / "bad.ewprofile"), str(tmp_path / "current.parquet")]
    )
    assert result.exit_code == 1
    assert "Error: not a valid profile: format version 7" in result.output


def test_a_column_sensitive_on_one_side_is_compared_as_sensitive(frames):
    reference, current, shifts = frames
    private = edgewise.profile(reference, sensitive=["merchant", "basket_value", "amount"])
    plain = edgewise.profile(current)
    for report in (edgewise.drift(private, plain), edgewise.drift(private, current)):
        verdicts = {c.name: c.drifted for c in report.columns}
        assert not verdicts["merchant"] and not verdicts["amount"]
        assert verdicts["basket_value"]  # its shift shows through the fixed bins too
        assert {name for name, drifted in verdicts.items() if drifted} == set(shifts)
