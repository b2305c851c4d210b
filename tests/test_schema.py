"""Schemas inferred from profiles, their JSON documents, validation of data against them, and
the `edgewise schema infer` / `edgewise validate` commands."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import edgewise
from edgewise import SchemaError
from edgewise.cli import main
from edgewise.profiles import ColumnSchema

ROWS = 2_000
DAY_2026 = 20_454  # 2026-01-01 in days since 1970-01-01
SENSITIVE_COMMENT = (
    "sensitive: the profile keeps no raw values, so only kind and nullability are checked"
)


def reference_table(rows: int = ROWS) -> pa.Table:
    """Every kind, with known extremes: float with NaN, nullable integer, boolean, string,
    timestamp, date, and a string column to be profiled as sensitive."""
    i = np.arange(rows)
    amount = 10.0 + (i % 100) * 0.5  # 10.0 .. 59.5
    amount[i % 50 == 7] = np.nan
    age = pa.array(18 + i % 60, mask=i % 40 == 3)  # 18 .. 77, some nulls
    return pa.table(
        {
            "amount": pa.array(amount),
            "age": age,
            "items": pa.array(i % 5),  # 0 .. 4, never null
            "flag": pa.array(i % 3 == 0),
            "city": pa.array(np.array(["oslo", "lima", "pune"])[i % 3]),
            "seen": pa.array(
                np.datetime64("2026-01-01T00:00:00", "us") + (i % 1000) * np.timedelta64(1, "h")
            ),
            "day": pa.array(np.datetime64("2026-01-01", "D") + (i % 10)),
            "email": pa.array([f"user{n}@example.com" for n in i]),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pa.Table:
    return reference_table()


@pytest.fixture(scope="module")
def profile(reference: pa.Table) -> edgewise.Profile:
    return edgewise.profile(reference, sensitive=["email"])


@pytest.fixture(scope="module")
def schema(profile: edgewise.Profile) -> edgewise.Schema:
    return edgewise.infer_schema(profile)


def test_the_schema_keeps_what_the_reference_shows_exactly(schema):
    columns = {column.name: column for column in schema.columns}
    assert list(columns) == ["amount", "age", "items", "flag", "city", "seen", "day", "email"]
    assert columns["amount"] == ColumnSchema(
        "amount",
        "float",
        nullable=False,
        max_null_fraction=0.0,
        range=(10.0, 59.5),
        allow_nan=True,
        allow_positive_infinity=False,
        allow_negative_infinity=False,
    )
    assert columns["age"] == ColumnSchema("age", "integer", nullable=True, range=(18.0, 77.0))
    assert columns["items"] == ColumnSchema(
        "items", "integer", nullable=False, max_null_fraction=0.0, range=(0.0, 4.0)
    )
    assert columns["flag"] == ColumnSchema("flag", "boolean", nullable=False, max_null_fraction=0.0)
    assert columns["city"].domain == ("lima", "oslo", "pune")  # sorted, for readable diffs
    hours = np.timedelta64(999, "h") // np.timedelta64(1, "us")
    start = np.datetime64("2026-01-01", "us").astype(np.int64)
    assert columns["seen"].kind == "timestamp[us]"
    assert columns["seen"].range == (float(start), float(start + hours))
    assert columns["day"] == ColumnSchema(
        "day", "date", nullable=False, max_null_fraction=0.0, range=(DAY_2026, DAY_2026 + 9)
    )
    # Sensitive: kind and nullability only.
    assert columns["email"] == ColumnSchema(
        "email", "string", nullable=False, max_null_fraction=0.0, comment=SENSITIVE_COMMENT
    )


def test_approximate_categories_give_no_domain_and_margins_widen_ranges(profile):
    many = edgewise.profile(pa.table({"code": [f"c{n}" for n in range(1_000)], "x": [0, 10] * 500}))
    code, x = edgewise.infer_schema(many, margin=0.04).columns
    assert code.domain is None
    assert code.comment is not None and "no domain" in code.comment
    assert x.range == (-1.0, 11.0)  # 0.4 on each side, rounded outward for integers
    amount = edgewise.infer_schema(profile, margin=0.1).column("amount")
    assert amount.range == pytest.approx((10.0 - 4.95, 59.5 + 4.95))
    with pytest.raises(ValueError, match="margin must be a finite number of at least 0"):
        edgewise.infer_schema(profile, margin=-1)


def test_the_document_is_readable_and_round_trips(tmp_path, schema):
    path = schema.save(tmp_path / "schema.json")
    text = path.read_text()
    assert edgewise.Schema.load(path) == schema
    document = json.loads(text)
    assert (document["format"], document["format_version"]) == ("edgewise-schema", 1)
    assert '\n      "range": [10.0, 59.5],\n' in text  # indented, short lists on one line
    assert '"range": ["2026-01-01T00:00:00", "2026-02-11T15:00:00"]' in text
    assert '"range": ["2026-01-01", "2026-01-10"]' in text
    assert '"domain": ["lima", "oslo", "pune"]' in text
    # Rules a kind does not have are not written; a comment says why a rule is absent.
    email = document["columns"][-1]
    assert email == {
        "name": "email",
        "kind": "string",
        "nullable": False,
        "max_null_fraction": 0.0,
        "domain": None,
        "comment": SENSITIVE_COMMENT,
    }
    assert "allow_nan" not in document["columns"][1]


def edited(schema: edgewise.Schema, column: int, **changes) -> dict:
    document = schema.to_json()
    document["columns"][column].update(changes)
    return document


@pytest.mark.parametrize(
    ("column", "changes", "message"),
    [
        (
            0,
            {"nulable": True},
            "columns[0] ('amount'): unknown field 'nulable'; a column has name, kind, nullable,",
        ),
        (0, {"range": [1, "high"]}, "columns[0] ('amount').range[1]: expected a finite number"),
        (0, {"range": [5, 1]}, "columns[0] ('amount').range: the minimum is above the maximum"),
        (1, {"kind": "int"}, "columns[1] ('age').kind: expected one of float, integer, boolean"),
        (1, {"max_null_fraction": 1.5}, "columns[1] ('age').max_null_fraction: 1.5 is not within"),
        (
            2,
            {"max_null_fraction": 0.1},
            "columns[2] ('items').max_null_fraction: must be 0 for a column that is not nullable",
        ),
        (2, {"nullable": "no"}, "columns[2] ('items').nullable: expected true or false"),
        (2, {"domain": ["a"]}, "columns[2] ('items').domain: only string columns have it"),
        (4, {"domain": ["a", "a"]}, "columns[4] ('city').domain: 'a' is listed twice"),
        (4, {"range": [0, 1]}, "columns[4] ('city').range: only float, integer, date and"),
        (6, {"range": ["2026-13-01", "2027-01-01"]}, "columns[6] ('day').range[0]: expected a"),
        (
            6,
            {"range": ["2026-01-01T10:00", "2026-01-10"]},
            "columns[6] ('day').range[0]: '2026-01-01T10:00' is not a whole day",
        ),
        (7, {"name": "amount"}, "columns[7].name: column 'amount' is listed twice"),
    ],
)
def test_hand_edited_mistakes_are_refused_naming_the_field(schema, column, changes, message):
    with pytest.raises(SchemaError) as error:
        edgewise.Schema.from_json(edited(schema, column, **changes))
    assert str(error.value).startswith(message), str(error.value)


def test_unreadable_documents_are_refused_clearly(tmp_path, schema):
    path = tmp_path / "schema.json"
    path.write_text('{"format": "edgewise-schema",')
    with pytest.raises(SchemaError, match=r"schema\.json: not JSON: .* at line 1 column 30"):
        edgewise.Schema.load(path)
    path.write_text(json.dumps({**schema.to_json(), "format_version": 2}))
    with pytest.raises(SchemaError, match="format_version: 2; this edgewise reads version 1"):
        edgewise.Schema.load(path)
    with pytest.raises(edgewise.DataFileError, match=r"nope\.json: No such file"):
        edgewise.Schema.load(tmp_path / "nope.json")


def test_clean_data_has_no_anomaly(tmp_path, reference, profile, schema):
    pq.write_table(reference, tmp_path / "reference.parquet", row_group_size=500)
    for data in (reference, tmp_path / "reference.parquet", reference_table(500)):
        report = edgewise.validate(data, schema=schema)
        assert report.anomalies == [] and report.ok
    report = edgewise.validate(reference, reference=profile)
    assert report.ok and report.rows == ROWS
    with pytest.raises(TypeError, match="exactly one of schema= and reference="):
        edgewise.validate(reference)


def planted(rows: int = ROWS) -> pa.Table:
    """The reference with one anomaly of each type planted at known rows."""
    table = reference_table(rows)
    amount = table["amount"].to_numpy(zero_copy_only=False).copy()
    amount[[10, 30]] = 1e6  # above the range
    amount[20] = 2.5e6
    amount[5] = -1.0  # below the range
    amount[6] = -np.inf  # no infinity in the reference
    items = table["items"].to_numpy().astype(np.float64)  # integer -> float: wrong type
    city = table["city"].to_numpy(zero_copy_only=False).copy()
    city[[7, 8, 1900]] = "atlantis"  # a new category
    city[1500] = "lima, peru"
    day = pa.array(table["day"].to_numpy(), mask=np.isin(np.arange(rows), [3, 1999]))
    return (
        table.set_column(0, "amount", pa.array(amount))
        .set_column(2, "items", pa.array(items))
        .set_column(4, "city", pa.array(city))
        .set_column(6, "day", day)
        .drop_columns(["flag"])  # missing
        .append_column("note", pa.array(["x"] * rows))  # unexpected
    )


EXPECTED = [
    ("amount", "infinite_values", "error", 1, 6, ["-inf"]),
    ("amount", "below_range", "error", 1, 5, ["-1.0"]),
    ("amount", "above_range", "error", 3, 10, ["1000000.0", "2500000.0"]),
    ("items", "wrong_type", "error", ROWS, 0, []),
    ("flag", "missing_column", "error", ROWS, 0, []),
    ("city", "unknown_category", "error", 4, 7, ["atlantis", "lima, peru"]),
    ("day", "null_values", "error", 2, 3, []),
    ("note", "unexpected_column", "warning", ROWS, 0, []),
]


def found(report: edgewise.ValidationReport) -> list[tuple]:
    return [
        (a.column, a.type, a.severity, a.count, a.first_row, a.examples) for a in report.anomalies
    ]


def test_each_planted_anomaly_is_found_with_its_count_and_examples(tmp_path, schema):
    data = planted()
    report = edgewise.validate(data, schema=schema)
    assert found(report) == EXPECTED
    assert not report.ok and len(report.errors) == 7 and len(report.warnings) == 1
    messages = {a.type: a.message for a in report.anomalies}
    assert messages == {
        "infinite_values": "1 value is infinite; the schema allows none",
        "below_range": "1 value is below the minimum 10.0",
        "above_range": "3 values are above the maximum 59.5",
        "wrong_type": "expected integer, found float",
        "missing_column": "the boolean column is missing",
        "unknown_category": "4 values are outside the domain (3 categories)",
        "null_values": "2 rows are null; the column is not nullable",
        "unexpected_column": "the column is not in the schema",
    }
    assert report.anomalies[2].share == 3 / ROWS
    # Parquet in two files (string columns arrive dictionary-encoded): the same anomalies, with
    # row indices counted over both files.
    pq.write_table(data.slice(0, 1000), tmp_path / "a.parquet")
    pq.write_table(data.slice(1000), tmp_path / "b.parquet")
    from_files = edgewise.validate(tmp_path, schema=schema)
    assert found(from_files) == found(report)
    json.dumps(from_files.to_json(), allow_nan=False)


def test_nan_null_shares_and_hand_written_rules():
    schema = edgewise.Schema(
        [
            ColumnSchema("x", "float", allow_nan=False, allow_positive_infinity=True),
            ColumnSchema("c", "string", max_null_fraction=0.25),
            ColumnSchema("t", "timestamp[ms, UTC]", range=(0.0, 1000.0)),
        ]
    )
    t = pa.array([0, 5_000, 1_000, None], type=pa.timestamp("ms", tz="UTC"))
    data = pa.table(
        {
            "x": pa.array([np.nan, np.inf, np.nan, 1.0]),
            "c": pa.array(["a", None, None, "b"]),
            "t": t,
        }
    )
    report = edgewise.validate(data, schema=schema)
    assert found(report) == [
        ("x", "nan_values", "error", 2, 0, ["NaN"]),
        ("c", "too_many_nulls", "error", 2, 1, []),
        ("t", "above_range", "error", 1, 1, ["1970-01-01T00:00:05Z"]),
    ]
    assert report.anomalies[1].message == "2 rows are null, more than the 25.00% allowed"
    assert report.anomalies[2].message == "1 value is above the maximum 1970-01-01T00:00:01Z"
    assert edgewise.validate(data.slice(3), schema=schema).ok


def test_schema_infer_and_validate_commands(tmp_path, reference):
    pq.write_table(reference, tmp_path / "reference.parquet")
    pq.write_table(planted(), tmp_path / "current.parquet")
    runner = CliRunner()
    ref = str(tmp_path / "reference.parquet")
    result = runner.invoke(main, ["profile", ref, "-o", str(tmp_path / "ref.ewprofile")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        ["schema", "infer", str(tmp_path / "ref.ewprofile"), "-o", str(tmp_path / "schema.json")],
    )
    assert result.exit_code == 0, result.output
    assert f"inferred a schema of 8 columns -> {tmp_path / 'schema.json'}" in result.output
    assert "  amount                   float          not null, range [10.0, 59.5]" in result.output
    schema = edgewise.Schema.load(tmp_path / "schema.json")
    assert schema == edgewise.infer_schema(edgewise.profile(reference))
    # From data, profiled on the way.
    infer = ["schema", "infer", ref, "-o", str(tmp_path / "s2.json"), "--sensitive", "email"]
    result = runner.invoke(main, [*infer, "--margin", "0.1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document == json.loads((tmp_path / "s2.json").read_text())
    assert document["columns"][0]["range"] == [5.05, 64.45]
    assert document["columns"][-1]["comment"] == SENSITIVE_COMMENT

    gate = ["validate", ref, "--schema", str(tmp_path / "schema.json"), "--fail-on-anomaly"]
    result = runner.invoke(main, gate)
    assert result.exit_code == 0, result.output
    assert result.output == f"0 errors, 0 warnings in {ROWS:,} rows: the data matches the schema\n"
    current = str(tmp_path / "current.parquet")
    result = runner.invoke(main, ["validate", current, "--reference", ref])
    assert result.exit_code == 0, result.output  # anomalies, but no --fail-on-anomaly
    assert (
        "  ERROR   city                     unknown_category   4 values are outside the domain "
        "(3 categories) (0.20% of rows; first at row 7; e.g. 'atlantis', 'lima, peru')\n"
    ) in result.output
    assert result.output.endswith(
        f"7 errors, 1 warning in {ROWS:,} rows: the data breaks the schema\n"
    )
    gate[1] = current
    result = runner.invoke(main, [*gate, "--json"])
    assert result.exit_code == 4, result.output
    document = json.loads(result.output)
    assert document["ok"] is False and document["errors"] == 7
    assert [(a["column"], a["type"]) for a in document["anomalies"]] == [e[:2] for e in EXPECTED]

    both = ["validate", ref, "--schema", str(tmp_path / "schema.json"), "--reference", ref]
    for usage in (both, ["validate", ref]):
        result = runner.invoke(main, usage)
        assert result.exit_code == 2
        assert "Error: give exactly one of --schema and --reference" in result.output
    (tmp_path / "bad.json").write_text(json.dumps(edited(schema, 0, kind="decimal")))
    result = runner.invoke(main, ["validate", ref, "--schema", str(tmp_path / "bad.json")])
    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: {tmp_path / 'bad.json'}: columns[0] ('amount').kind: expected one of"
    )
