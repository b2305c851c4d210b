"""The Rust core's building blocks against naive Python references."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgewise import DataFileError, SchemaError
from edgewise._core import Batch, InputLayout, ParquetFile, ParquetWriter

CATEGORIES = ["a", "b", "c"]

numbers = st.one_of(st.none(), st.just(math.nan), st.floats(-1e6, 1e6, allow_nan=False))
strings = st.one_of(st.none(), st.sampled_from([*CATEGORIES, "zz", ""]))


@st.composite
def tables(draw):
    rows = draw(st.integers(0, 40))
    x = draw(st.lists(numbers, min_size=rows, max_size=rows))
    n = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=rows, max_size=rows))
    s = draw(st.lists(strings, min_size=rows, max_size=rows))
    string_array = pa.array(s, pa.string())
    if draw(st.booleans()):
        string_array = string_array.dictionary_encode()
    return pa.table(
        {"x": pa.array(x, pa.float64()), "n": pa.array(n, pa.int32()), "s": string_array}
    )


def reference(table: pa.Table, x_missing: bool, known: list[str] | None):
    """Row by row: the first reason a row is refused, or its tensors."""
    accepted, reasons, xn, ss = [], [], [], []
    for x, n, s in zip(*(table[c].to_pylist() for c in ("x", "n", "s")), strict=True):
        reason = None
        if not x_missing and x is None:
            reason = "column 'x' is null"
        elif not x_missing and x is not None and math.isnan(x):
            reason = "column 'x' is NaN"
        elif n is None:
            reason = "column 'n' is null"
        elif s is None:
            reason = "column 's' is null"
        elif known is not None and s not in known:
            reason = f"column 's': unknown category {s!r}".replace("'", '"')
        if reason:
            reasons.append(reason)
            accepted.append(False)
            continue
        accepted.append(True)
        xn.append([np.float32(np.nan if x is None else x), np.float32(n)])
        ss.append([s])
    return accepted, reasons, np.array(xn, np.float32).reshape(-1, 2), np.array(ss, object)


@given(table=tables(), x_missing=st.booleans(), enforce=st.booleans())
def test_prepare_matches_row_by_row_reference(table, x_missing, enforce):
    known = CATEGORIES if enforce else None
    layout = InputLayout(
        [("num", "float32", ["x", "n"]), ("cat", "string", ["s"])],
        [("x", x_missing, None), ("n", False, None), ("s", False, known)],
    )
    batch = Batch.from_arrow(table)
    tensors, verdicts = layout.prepare(batch, "t")
    want_accepted, want_reasons, want_num, want_cat = reference(table, x_missing, known)
    want_rejected = [i for i, ok in enumerate(want_accepted) if not ok]
    assert (verdicts.rows, verdicts.accepted_rows) == (len(want_accepted), sum(want_accepted))
    assert verdicts.rejected_rows == want_rejected
    assert [r.replace("'", '"') for r in verdicts.reasons] == [
        r.replace("'", '"') for r in want_reasons
    ]
    # The verdicts select the same rows as a mask would, from the batch or a projection of it.
    ids = pa.array(range(len(want_accepted)))
    numbered = Batch.from_arrow(pa.table({"id": ids}))
    assert pa.table(verdicts.accepted(numbered))["id"].to_pylist() == [
        i for i, ok in enumerate(want_accepted) if ok
    ]
    assert pa.table(verdicts.rejected(numbered))["id"].to_pylist() == want_rejected
    assert verdicts.accepted(batch).num_rows == sum(want_accepted)
    assert layout.check_rows(batch, "t").rejected_rows == want_rejected
    np.testing.assert_array_equal(tensors["num"], want_num)
    assert tensors["num"].dtype == np.float32 and tensors["num"].shape == (sum(want_accepted), 2)
    assert tensors["cat"].reshape(-1).tolist() == want_cat.reshape(-1).tolist()


def test_prepare_names_a_column_of_the_wrong_kind():
    layout = InputLayout([("x", "float32", ["x"])], [])
    batch = Batch.from_arrow(pa.table({"x": ["1.5"]}))
    with pytest.raises(SchemaError, match="src: column 'x': the model needs a numeric column"):
        layout.prepare(batch, "src")


def test_invalid_options_list_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match="choose one of float32, float64, int64, string"):
        InputLayout([("x", "float16", ["x"])], [])
    with pytest.raises(ValueError, match="choose one of zstd, snappy, none"):
        ParquetWriter(tmp_path / "x.parquet", "lz5")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "a.parquet")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        ParquetFile(tmp_path / "a.parquet", 0)


def test_read_chosen_row_groups_and_columns_in_the_order_asked(tmp_path):
    table = pa.table({"a": list(range(100)), "b": [str(i) for i in range(100)], "c": [1.0] * 100})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=10)
    file = ParquetFile(tmp_path / "t.parquet", threads=2)
    assert file.num_rows == 100 and file.row_group_rows == [10] * 10
    assert dict(file.column_kinds()) == {"a": "int", "b": "string", "c": "float"}
    batch = pa.record_batch(file.read([3, 4, 9], ["c", "a"]))
    assert batch.schema.names == ["c", "a"]
    assert batch["a"].to_pylist() == [*range(30, 50), *range(90, 100)]
    encoded = pa.record_batch(file.read([0], ["b", "a"], dictionary=["b"]))
    assert pa.types.is_dictionary(encoded.schema.field("b").type)
    assert encoded["b"].to_pylist() == [str(i) for i in range(10)]
    with pytest.raises(SchemaError, match="column 'zz': missing from the file"):
        file.read([0], ["zz"])
    with pytest.raises(ValueError, match="row group 10 does not exist"):
        file.read([10], ["a"])


def test_reading_several_row_groups_matches_pyarrow(tmp_path):
    """Columns read across row groups, each with its own dictionary, in the order asked."""
    rows = 600
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "x": pa.array([None if i % 7 == 0 else i / 3 for i in range(rows)], pa.float64()),
            # each row group of 100 rows sees different categories, so different dictionaries
            "cat": pa.array([None if i % 11 == 0 else f"c{i // 100}-{i % 3}" for i in range(rows)]),
            "text": pa.array([f"t{i}" for i in range(rows)], pa.large_string()),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=100)
    file = ParquetFile(tmp_path / "t.parquet", threads=2)
    chosen = [5, 1, 3]
    expected = pa.concat_tables([table.slice(rg * 100, 100) for rg in chosen])
    columns = ["text", "cat", "id", "x"]
    plain = pa.record_batch(file.read(chosen, columns))
    assert plain.schema.names == columns
    encoded = pa.record_batch(file.read(chosen, columns, dictionary=["cat"]))
    assert pa.types.is_dictionary(encoded.schema.field("cat").type)
    for batch in (plain, encoded):
        for name in columns:
            assert batch[name].to_pylist() == expected[name].to_pylist(), name


def test_writer_round_trip_and_misuse(tmp_path):
    batch = Batch.from_arrow(pa.table({"a": [1, 2, 3]})).with_columns(
        [("p", np.array([0.5, 0.25, 1.0])), ("s", np.array(["x", None, "z"], dtype=object))]
    )
    writer = ParquetWriter(tmp_path / "out.parquet")
    writer.write(batch)
    writer.write(batch.filter(np.array([True, False, True])))
    assert writer.close() > 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table["s"].to_pylist() == ["x", None, "z", "x", "z"]
    constants = pa.record_batch(batch.with_columns([("name", "m"), ("version", 7), ("w", 0.5)]))
    assert (
        constants["name"].to_pylist() == ["m"] * 3 and constants["version"].to_pylist() == [7] * 3
    )
    assert constants.schema.field("w").type == pa.float64()
    with pytest.raises(ValueError, match="already closed"):
        writer.close()
    with pytest.raises(ValueError, match="has 2 values for 3 rows"):
        batch.with_columns([("q", np.zeros(2))])
    with pytest.raises(ValueError, match="unsupported numpy dtype"):
        batch.with_columns([("q", np.zeros(3, dtype=np.complex64))])


def test_writer_encodes_each_kind_of_column_for_its_values(tmp_path):
    """Scores split into byte planes without a dictionary, identifiers as deltas, labels, the
    version and varied strings through a dictionary, a constant string (the model name) plain;
    one row group per batch (the last one written at close), every value and type back as
    written (also identifiers whose deltas overflow, and nulls), by pyarrow and by polars."""
    rows = 5000
    rng = np.random.default_rng(3)
    ids = np.arange(rows, dtype=np.int64)
    ids[rows // 2 :] = rng.integers(-(2**63), 2**63 - 1, rows - rows // 2, dtype=np.int64)
    id_column = pa.array(ids, mask=np.arange(rows) % 7 == 0)
    batch = Batch.from_arrow(pa.table({"id": id_column})).with_columns(
        [
            ("p", rng.random(rows)),
            ("label", rng.integers(0, 3, rows)),
            ("version", 4),
            ("name", "credit"),
            ("segment", rng.choice(np.array(["a", "b", "c"], dtype=object), rows)),
        ]
    )
    writer = ParquetWriter(tmp_path / "out.parquet", "zstd", 2)
    writer.write(batch)
    writer.write(batch.filter(np.zeros(rows, dtype=bool)))  # an empty row group, kept in order
    writer.write(batch)
    writer.close()
    file = pq.ParquetFile(tmp_path / "out.parquet")
    groups = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    assert groups == [rows, 0, rows]
    encodings = {
        column.path_in_schema: set(column.encodings)
        for column in map(file.metadata.row_group(0).column, range(file.metadata.num_columns))
    }
    assert "BYTE_STREAM_SPLIT" in encodings["p"] and "RLE_DICTIONARY" not in encodings["p"]
    assert "DELTA_BINARY_PACKED" in encodings["id"] and "RLE_DICTIONARY" not in encodings["id"]
    assert all("RLE_DICTIONARY" in encodings[c] for c in ("label", "version", "segment"))
    assert encodings["name"] == {"PLAIN", "RLE"} and encodings["segment"] != encodings["name"]
    written = pa.Table.from_batches([pa.record_batch(batch)] * 2)
    assert file.read().equals(written)
    assert file.schema_arrow.field("name").type == pa.string()
    assert file.metadata.row_group(0).column(4).statistics.min == "credit"
    polars = pl.read_parquet(tmp_path / "out.parquet")
    assert polars["name"].dtype == pl.String and polars["name"].to_list() == ["credit"] * 2 * rows
    assert polars.to_arrow()["id"].equals(written["id"])


def test_writer_mixes_columns_written_from_values_with_nested_and_null_ones(tmp_path):
    """int64 / float64 columns without nulls go from their buffers into the column writers
    (also when nullable, or a slice of a larger array); nested columns, and ones with nulls,
    take the Arrow path between them: each leaf lands in its own column, values and
    statistics back as written."""
    rows = 3000
    rng = np.random.default_rng(5)
    table = pa.table(
        {
            "nested": pa.array([{"a": i, "b": [float(i)] * (i % 3)} for i in range(rows)]),
            "ids": pa.array(np.arange(rows, dtype=np.int64)),  # nullable, no nulls
            "gaps": pa.array(rng.random(rows), mask=np.arange(rows) % 5 == 0),
            "tags": pa.array([["x"] * (i % 2) for i in range(rows)]),
        }
    )
    wide = Batch.from_arrow(pa.table({"late": np.arange(2 * rows, dtype=np.int64)}))
    batch = (
        Batch.from_arrow(table)
        .with_columns([("p", rng.random(rows)), ("label", rng.integers(0, 2, rows))])
        .append_columns([wide.slice(rows, rows)])
    )
    writer = ParquetWriter(tmp_path / "out.parquet", "zstd", 2)
    writer.write(batch)
    writer.write(batch.slice(7, 100))
    writer.close()
    file = pq.ParquetFile(tmp_path / "out.parquet")
    expected = pa.Table.from_batches([pa.record_batch(batch), pa.record_batch(batch.slice(7, 100))])
    assert file.read().equals(expected)
    assert (
        pl.read_parquet(tmp_path / "out.parquet")
        .to_arrow()
        .equals(pl.from_arrow(expected).to_arrow())
    )
    metadata = file.metadata.row_group(1)
    statistics = {
        metadata.column(i).path_in_schema: metadata.column(i).statistics
        for i in range(metadata.num_columns)
    }
    assert (statistics["late"].min, statistics["late"].max) == (rows + 7, rows + 106)
    assert (statistics["ids"].min, statistics["ids"].null_count) == (7, 0)
    p = pa.record_batch(batch.slice(7, 100))["p"].to_numpy()
    assert (statistics["p"].min, statistics["p"].max) == (p.min(), p.max())


def test_unreadable_file_names_the_path(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataFileError, match=r"bad\.parquet: not a readable Parquet file"):
        ParquetFile(tmp_path / "bad.parquet")


def test_batch_slice_append_and_column_share_or_convert_columns():
    batch = Batch.from_arrow(pa.table({"x": [1.0, 2.0, 3.0], "s": ["a", None, "c"]}))
    other = batch.select([]).with_columns([("n", [7, 8, 9]), ("t", ["p", "q", None])])
    joined = batch.append_columns([other, batch.select(["x"]).slice(0, 3)])
    assert pa.table(joined).column_names == ["x", "s", "n", "t", "x"]
    assert pa.table(joined.slice(1, 2)).to_pydict()["n"] == [8, 9]
    assert joined.slice(3, 0).num_rows == 0
    with pytest.raises(ValueError, match=r"rows 2\.\.4 are outside a batch of 3 rows"):
        batch.slice(2, 2)
    with pytest.raises(ValueError, match="cannot put a batch of 1 rows beside one of 3"):
        batch.append_columns([batch.slice(0, 1)])
    np.testing.assert_array_equal(joined.column("n"), np.array([7, 8, 9], dtype=np.int64))
    assert joined.column("t").tolist() == ["p", "q", None]
    assert joined.column("x").dtype == np.float64
    with pytest.raises(ValueError, match="lists must hold int, or str and None"):
        batch.with_columns([("bad", [1.5, 2.5, 3.5])])
