"""Profiles against exact statistics computed by numpy, pandas and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import edgewise
from edgewise import ProfileFormatError, SchemaError

# DataSketches' a-priori bound for single-rank queries at k=200 (99% confidence).
RANK_ERROR_K200 = 0.0133


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 1.0, rows)
    amount[rng.random(rows) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "score": rng.normal(600, 50, rows),
            "items": rng.poisson(3, rows),
            "flag": rng.random(rows) < 0.3,
            "city": rng.choice(["oslo", "lima", "pune"], rows, p=[0.5, 0.3, 0.2]),
            "seen": pd.to_datetime("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 86400, rows), "s"),
        }
    )


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return frame(200_000)


def by_name(profile: edgewise.Profile) -> dict[str, dict]:
    return {column["name"]: column for column in profile.summary()}


def test_summary_matches_exact_statistics(data):
    profile = edgewise.profile(pa.Table.from_pandas(data, preserve_index=False))
    summary = by_name(profile)
    assert profile.rows == len(data)
    amount = data["amount"].to_numpy()
    finite = amount[np.isfinite(amount)]
    column = summary["amount"]
    assert column["kind"] == "float"
    # pyarrow turns pandas' NaN into nulls.
    assert column["nulls"] == np.isnan(amount).sum() and column["nan"] == 0
    assert column["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert column["std"] == pytest.approx(finite.std(ddof=1), rel=1e-12)
    assert column["skewness"] == pytest.approx(stats.skew(finite), rel=1e-9)
    assert (column["min"], column["max"]) == (finite.min(), finite.max())
    assert column["distinct"] == pytest.approx(len(np.unique(finite)), rel=0.05)
    assert column["value_counts"] is None
    items = summary["items"]
    assert items["kind"] == "integer"
    values, counts = np.unique(data["items"], return_counts=True)
    assert items["value_counts"] == [
        (float(v), int(c)) for v, c in zip(values, counts, strict=True)
    ]
    assert (summary["flag"]["true"], summary["flag"]["false"]) == (
        data["flag"].sum(),
        (~data["flag"]).sum(),
    )
    city = summary["city"]
    assert city["counts_exact"] is True
    assert dict(city["top"]) == data["city"].value_counts().to_dict()
    assert summary["seen"]["kind"].startswith("timestamp[")


def test_quantiles_are_within_the_published_rank_error(data):
    profile = edgewise.profile(pa.Table.from_pandas(data, preserve_index=False))
    for column in ("amount", "score"):
        values = np.sort(data[column].dropna().to_numpy())
        fractions = np.linspace(0.01, 0.99, 99)
        for fraction, value in zip(
            fractions, profile.quantiles(column, list(fractions)), strict=True
        ):
            rank = np.searchsorted(values, value, side="right") / len(values)
            assert abs(rank - fraction) <= RANK_ERROR_K200, (column, fraction, rank)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 19_999), st.integers(0, 2**16))
def test_profile_of_a_union_equals_the_merge_of_the_parts(split, seed):
    data = frame(20_000, seed)
    table = pa.Table.from_pandas(data, preserve_index=False)
    whole = by_name(edgewise.profile(table))
    merged_profile = edgewise.profile(table.slice(0, split)).merge(
        edgewise.profile(table.slice(split))
    )
    merged = by_name(merged_profile)
    for name, column in whole.items():
        other = merged[name]
        for key in ("rows", "nulls", "values", "nan", "true", "false", "min", "max", "top"):
            assert other.get(key) == column.get(key), (name, key)
        # Skewness near 0 of timestamps (values near 1.8e15) keeps fewer digits.
        for key, tolerance in (("mean", 1e-12), ("std", 1e-12), ("skewness", 1e-6)):
            if column.get(key) is not None:
                assert other[key] == pytest.approx(column[key], rel=1e-9, abs=tolerance), (
                    name,
                    key,
                )
    exact = np.sort(data["score"].to_numpy())
    for fraction, value in zip(
        [0.1, 0.5, 0.9], merged_profile.quantiles("score", [0.1, 0.5, 0.9]), strict=True
    ):
        rank = np.searchsorted(exact, value, side="right") / len(exact)
        assert abs(rank - fraction) <= RANK_ERROR_K200


def test_merging_many_profiles_at_once_equals_merging_them_one_by_one():
    """`Profile.merge_all` (the collector's many small windows) keeps what pairwise merges
    keep: exact counts and moments, the same quantiles, distinct counts within the sketch's
    error (one union instead of one per pair)."""
    data = frame(12_000, seed=3)
    table = pa.Table.from_pandas(data, preserve_index=False)
    parts = [edgewise.profile(table.slice(start, 100)) for start in range(0, 12_000, 100)]
    at_once = edgewise.Profile.merge_all(parts, threads=1)
    one_by_one = parts[0]
    for part in parts[1:]:
        one_by_one = one_by_one.merge(part)
    whole, merged = by_name(edgewise.profile(table)), by_name(at_once)
    assert at_once.rows == one_by_one.rows == 12_000
    for name, column in whole.items():
        other = merged[name]
        for key in ("rows", "nulls", "values", "nan", "true", "false", "min", "max", "top"):
            assert other.get(key) == column.get(key), (name, key)
        if column.get("mean") is not None:
            assert other["mean"] == pytest.approx(column["mean"], rel=1e-9)
        if column.get("distinct") is not None:
            assert other["distinct"] == pytest.approx(column["distinct"], rel=0.05), name
    assert at_once.quantiles("score", [0.1, 0.5, 0.9]) == one_by_one.quantiles(
        "score", [0.1, 0.5, 0.9]
    )
    assert at_once.to_bytes() != parts[0].to_bytes()  # a new profile; the parts are untouched
    assert parts[0].rows == 100
    with pytest.raises(ValueError, match="at least one profile"):
        edgewise.Profile.merge_all([])


def test_parquet_sources_polars_and_column_selection(tmp_path, data):
    table = pa.Table.from_pandas(data, preserve_index=False)
    pq.write_table(table.slice(0, 120_000), tmp_path / "a.parquet", row_group_size=50_000)
    pq.write_table(table.slice(120_000), tmp_path / "b.parquet", row_group_size=50_000)
    from_files = by_name(edgewise.profile(tmp_path, columns=["score", "city"]))
    from_polars = by_name(edgewise.profile(pl.from_arrow(table), columns=["score", "city"]))
    assert list(from_files) == ["score", "city"]
    for name in from_files:
        for key in ("rows", "nulls", "min", "max", "top"):
            assert from_files[name].get(key) == from_polars[name].get(key)
    with pytest.raises(SchemaError, match=r"a\.parquet: column 'nope': not in the file"):
        edgewise.profile(tmp_path, columns=["nope"])


def test_parquet_row_groups_profiled_in_parallel_parts(tmp_path, data):
    """Each thread profiles every n-th row group into a part of its own: counts, extremes and
    categories are exact, quantiles within the sketch's bound, and the same thread count
    gives the same bytes."""
    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path, row_group_size=7_000)
    one, two = (edgewise.profile(path, threads=threads) for threads in (1, 2))
    assert one.rows == two.rows == len(data)
    for name, column in by_name(one).items():
        other = by_name(two)[name]
        for key in ("rows", "nulls", "nan", "finite", "min", "max", "value_counts", "top"):
            assert column.get(key) == other.get(key), (name, key)
    scores = np.sort(data["score"].to_numpy())
    for fraction in (0.01, 0.25, 0.5, 0.9, 0.99):
        value = two.quantiles("score", [fraction])[0]
        rank = np.searchsorted(scores, value, side="right") / len(scores)
        assert abs(rank - fraction) <= RANK_ERROR_K200
    assert edgewise.profile(path, threads=2).to_bytes() == two.to_bytes()
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.Table.from_pandas(data.iloc[:0], preserve_index=False), empty)
    assert edgewise.profile(empty).rows == 0


def test_sensitive_columns_keep_no_raw_values(data):
    table = pa.Table.from_pandas(data, preserve_index=False)
    profile = edgewise.profile(table, sensitive=["city", "amount"])
    summary = by_name(profile)
    assert "min" not in summary["amount"] and "median" not in summary["amount"]
    assert all(label.startswith("#") for label, _ in summary["city"]["top"])
    data_bytes = profile.to_bytes()
    assert b"oslo" not in data_bytes
    amount = data["amount"].dropna()
    for value in (amount.min(), amount.max()):
        assert np.float64(value).tobytes() not in data_bytes
    assert summary["amount"]["mean"] == pytest.approx(amount.mean(), rel=1e-12)


def test_bytes_round_trip_and_stay_small():
    small = edgewise.profile(pa.Table.from_pandas(frame(20_000), preserve_index=False))
    large = edgewise.profile(pa.Table.from_pandas(frame(1_000_000), preserve_index=False))
    back = edgewise.Profile.from_bytes(large.to_bytes())
    assert back.summary() == large.summary()
    sizes = dict(large.column_sizes())
    assert max(sizes["amount"], sizes["score"]) <= 8 * 1024, sizes
    # Memory does not grow with rows: 50 times the rows, about the same bytes.
    assert len(large.to_bytes()) < 2 * len(small.to_bytes())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_refused_clearly(data):
    with pytest.raises(ProfileFormatError, match="not a valid profile"):
        edgewise.Profile.from_bytes(data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_profiles_are_refused_or_read_never_crash(data):
    original = _REFERENCE_BYTES
    position = data.draw(st.integers(0, len(original) - 1))
    damaged = bytearray(original)
    damaged[position] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.integers(0, len(original)))
    try:
        read = edgewise.Profile.from_bytes(bytes(damaged[:cut]))
    except ProfileFormatError as exc:
        assert str(exc).startswith("not a valid profile: ")
    else:
        # A flip that still decodes (a count, a statistic) gives a profile that is whole.
        assert edgewise.Profile.from_bytes(read.to_bytes()).rows == read.rows


_REFERENCE_BYTES = edgewise.profile(
    pa.Table.from_pandas(frame(5_000), preserve_index=False)
).to_bytes()
