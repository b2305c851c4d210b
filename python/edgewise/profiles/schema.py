"""Schemas and data validation: a schema inferred from a reference profile (what each column
may hold), its JSON document, and the anomalies of data checked against it.

The checks run in Rust (`edgewise._core.Validator`, one streaming pass over Arrow batches);
this module holds the JSON form, which people edit by hand, and the report.

A schema document (format `edgewise-schema`, version 1) lists columns; each has `name` and
`kind` and, depending on the kind, the rules below. A rule left out (or null) is not checked:

- `nullable` (default true); `max_null_fraction`: 0 when not nullable, else a share of rows in
  [0, 1] or null for no limit;
- numeric kinds (float, integer, date, timestamp[...]): `range` [min, max] of the finite
  values, numbers or, for dates and timestamps, ISO 8601 strings (timestamps in UTC);
- float: `allow_nan`, `allow_positive_infinity`, `allow_negative_infinity` (default true);
- string: `domain`, the categories allowed;
- any: `comment`, free text (inference explains there why a rule is absent).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .._core import Profile, Validator
from .._core import infer_schema as _infer_columns
from ..exceptions import DataFileError, SchemaError
from ..sources import describe_source
from .profile import Source, _batches, profile

SCHEMA_FORMAT = "edgewise-schema"
SCHEMA_FORMAT_VERSION = 1
REPORT_FORMAT = "edgewise-validation"
REPORT_FORMAT_VERSION = 1

_SIMPLE_KINDS = ("float", "integer", "boolean", "string", "date")
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, ([^\]]+))?\]\Z")
# Lists of scalars up to this width stay on one line in a schema document.
INLINE_WIDTH = 80
_UNIT_NAMES = {
    "D": "day",
    "s": "second",
    "ms": "millisecond",
    "us": "microsecond",
    "ns": "nanosecond",
}
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_FLOAT_RULES = ("allow_nan", "allow_positive_infinity", "allow_negative_infinity")


@dataclass(frozen=True)
class ColumnSchema:
    """What one column may hold; a rule that is None (or an `allow_` flag that is True) is not
    checked. `range` is in the kind's numbers: dates in days, timestamps in their unit, since
    1970-01-01 (UTC)."""

    name: str
    kind: str
    nullable: bool = True
    max_null_fraction: float | None = None
    range: tuple[float, float] | None = None
    allow_nan: bool = True
    allow_positive_infinity: bool = True
    allow_negative_infinity: bool = True
    domain: tuple[str, ...] | None = None
    comment: str | None = None

    @property
    def numeric(self) -> bool:
        return self.kind not in ("boolean", "string")

    def to_json(self) -> dict[str, Any]:
        """The column as written in a schema document: the rules its kind supports."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "nullable": self.nullable,
            "max_null_fraction": self.max_null_fraction,
        }
        if self.numeric:
            data["range"] = (
                None if self.range is None else [_format_bound(self.kind, v) for v in self.range]
            )
        if self.kind == "float":
            data.update({name: getattr(self, name) for name in _FLOAT_RULES})
        if self.kind == "string":
            data["domain"] = None if self.domain is None else list(self.domain)
        if self.comment is not None:
            data["comment"] = self.comment
        return data


@dataclass(frozen=True)
class Schema:
    """The columns a dataset must have and what each may hold (docs/drift.md)."""

    columns: list[ColumnSchema] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSchema:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "format_version": SCHEMA_FORMAT_VERSION,
            "columns": [column.to_json() for column in self.columns],
        }

    @classmethod
    def from_json(cls, data: Any) -> Schema:
        """Read a schema document, checking every field; `SchemaError` names the one at fault."""
        return _read_schema(data)

    def dumps(self) -> str:
        """The schema document as indented JSON text, short lists on one line."""
        return _dumps(self.to_json()) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the schema document to `path` (replaced atomically)."""
        from ..bundle import write_atomic

        return write_atomic(Path(path), self.dumps().encode())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Schema:
        """Read a schema document; errors start with the path."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DataFileError(f"{os.fspath(path)}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise SchemaError(f"{os.fspath(path)}: not UTF-8 text ({exc.reason})") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(
                f"{os.fspath(path)}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        try:
            return cls.from_json(data)
        except SchemaError as exc:
            raise SchemaError(f"{os.fspath(path)}: {exc}") from exc


@dataclass(frozen=True)
class Anomaly:
    """One rule broken by the data: how many rows (and which share of them), the first row
    (counting from 0 over all the data read) and up to 5 distinct offending values."""

    column: str
    type: str
    severity: str  # "error", or "warning" for a column the schema does not list
    count: int
    share: float
    first_row: int | None
    examples: list[str]
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ValidationReport:
    """The anomalies of data checked against a schema; `ok` when none is an error."""

    anomalies: list[Anomaly]
    rows: int
    source: str
    schema: Schema = field(repr=False)

    @property
    def errors(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity == "error"]

    @property
    def warnings(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.severity != "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "format_version": REPORT_FORMAT_VERSION,
            "ok": self.ok,
            "rows": self.rows,
            "source": self.source,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "anomalies": [anomaly.to_json() for anomaly in self.anomalies],
        }


def infer_schema(
    reference: Profile | Source,
    *,
    margin: float = 0.0,
    sensitive: Sequence[str] = (),
    threads: int | None = None,
) -> Schema:
    """The schema of `reference`, a `Profile` or data `profile()` accepts (`sensitive` is then
    passed on): each column's kind and nullability; numeric ranges (widened by `margin` times
    their width on each side), and whether NaN and infinities occur; string domains while the
    profile counted every category exactly. Sensitive columns get kind and nullability only."""
    if not isinstance(reference, Profile):
        reference = profile(reference, sensitive=sensitive, threads=threads)
    return Schema([_column(values) for values in _infer_columns(reference, margin)])


def validate(
    data: Source,
    *,
    schema: Schema | str | os.PathLike[str] | None = None,
    reference: Profile | Source | None = None,
    threads: int | None = None,
) -> ValidationReport:
    """Check `data` (Parquet files, directories or glob patterns, or any Arrow table) against
    `schema` (a `Schema` or the path of a schema document) or against the schema inferred from
    `reference` (a `Profile`, or data to profile), in one streaming pass."""
    if (schema is None) == (reference is None):
        raise TypeError("validate() takes exactly one of schema= and reference=")
    if schema is None:
        schema = infer_schema(reference, threads=threads)
    elif not isinstance(schema, Schema):
        schema = Schema.load(schema)
    validator = Validator([_rules(column) for column in schema.columns], threads)
    for batch in _batches(data, None, threads):
        validator.update(batch)
    anomalies = [
        Anomaly(
            column=found["column"],
            type=found["type"],
            severity=found["severity"],
            count=found["count"],
            share=found["share"],
            first_row=found["first_row"],
            examples=found["examples"],
            message=_message(found, schema),
        )
        for found in validator.anomalies()
    ]
    return ValidationReport(anomalies, validator.rows, describe_source(data), schema)


# -- between the dataclasses and the core's plain values ---------------------------------------


def _column(values: Mapping[str, Any]) -> ColumnSchema:
    domain = values["domain"]
    return ColumnSchema(
        **{**values, "domain": None if domain is None else tuple(domain)},
    )


def _rules(column: ColumnSchema) -> dict[str, Any]:
    return {f.name: getattr(column, f.name) for f in fields(column)}


def _message(found: Mapping[str, Any], schema: Schema) -> str:
    """What is wrong, in words; counts of rows for nulls, of values for the value rules."""
    kind, count = found["type"], found["count"]
    values = f"{count:,} {'value is' if count == 1 else 'values are'}"
    if kind == "unexpected_column":
        return "the column is not in the schema"
    column = schema.column(found["column"])
    if kind == "missing_column":
        return f"the {column.kind} column is missing"
    if kind == "wrong_type":
        return f"expected {column.kind}, found {found['found']}"
    if kind == "null_values":
        return (
            f"{count:,} {'row is' if count == 1 else 'rows are'} null; the column is not nullable"
        )
    if kind == "too_many_nulls":
        return (
            f"{count:,} {'row is' if count == 1 else 'rows are'} null, more than the "
            f"{column.max_null_fraction:.2%} allowed"
        )
    if kind == "nan_values":
        return f"{values} NaN; the schema allows none"
    if kind == "infinite_values":
        allowed = {
            (False, False): "none",
            (True, False): "+inf only",
            (False, True): "-inf only",
        }.get((column.allow_positive_infinity, column.allow_negative_infinity), "both")
        return f"{values} infinite; the schema allows {allowed}"
    if kind in ("below_range", "above_range"):
        assert column.range is not None
        low, high = (_format_bound(column.kind, v) for v in column.range)
        side = f"below the minimum {low}" if kind == "below_range" else f"above the maximum {high}"
        return f"{values} {side}"
    if kind == "unknown_category":
        size = len(column.domain or ())
        return f"{values} outside the domain ({size:,} {'category' if size == 1 else 'categories'})"
    return f"{count:,} rows"


# -- range bounds: numbers, or ISO 8601 text for dates and timestamps ----------------------------


def _time_unit(kind: str) -> str | None:
    if kind == "date":
        return "D"
    match = _TIMESTAMP.match(kind)
    return match.group(1) if match else None


def _format_bound(kind: str, value: float) -> float | int | str:
    unit = _time_unit(kind)
    if unit is not None:
        moment = np.array(int(value), dtype=f"datetime64[{unit}]")
        if unit == "D":
            return str(moment)
        # Whole seconds, or as many decimals as the value needs.
        whole = int(value) % _PER_SECOND[unit] == 0
        text = str(np.datetime_as_string(moment, unit="s" if whole else "auto"))
        # A timestamp with a time zone is an instant, kept in UTC.
        zoned = _TIMESTAMP.match(kind)
        return text + "Z" if zoned and zoned.group(2) else text
    if kind == "integer":
        return int(value)
    return float(value)


def _parse_bound(kind: str, value: Any, where: str) -> float:
    unit = _time_unit(kind)
    if isinstance(value, str) and unit is not None:
        expected = "a date as YYYY-MM-DD" if unit == "D" else "an ISO 8601 time in UTC"
        try:
            moment = np.datetime64(value.removesuffix("Z"))
        except ValueError:
            moment = np.datetime64("NaT")
        if np.isnat(moment):
            raise SchemaError(f"{where}: expected {expected}, got {value!r}")
        converted = moment.astype(f"datetime64[{unit}]")
        if converted != moment:
            raise SchemaError(f"{where}: {value!r} is not a whole {_UNIT_NAMES[unit]}")
        return float(converted.astype(np.int64))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        expected = "a finite number" + (" or ISO 8601 text" if unit is not None else "")
        raise SchemaError(f"{where}: expected {expected}, got {json.dumps(value)}")
    return float(value)


# -- reading a schema document, every field checked ---------------------------------------------


_COLUMN_FIELDS = [f.name for f in fields(ColumnSchema)]


def _read_schema(data: Any) -> Schema:
    if not isinstance(data, Mapping):
        raise SchemaError(f"a schema is a JSON object, got {_json_type(data)}")
    unknown = sorted(set(data) - {"format", "format_version", "columns", "comment"})
    if unknown:
        raise SchemaError(
            f"unknown field '{unknown[0]}'; a schema has format, format_version, columns "
            "and comment"
        )
    if data.get("format") != SCHEMA_FORMAT:
        raise SchemaError(f"format: expected {SCHEMA_FORMAT!r}, got {data.get('format')!r}")
    version = data.get("format_version")
    if version != SCHEMA_FORMAT_VERSION:
        raise SchemaError(
            f"format_version: {json.dumps(version)}; this edgewise reads version "
            f"{SCHEMA_FORMAT_VERSION}"
        )
    entries = data.get("columns")
    if not isinstance(entries, list):
        raise SchemaError(f"columns: expected a list, got {_json_type(entries)}")
    columns: list[ColumnSchema] = []
    for index, entry in enumerate(entries):
        column = _read_column(entry, f"columns[{index}]")
        if any(c.name == column.name for c in columns):
            raise SchemaError(f"columns[{index}].name: column {column.name!r} is listed twice")
        columns.append(column)
    return Schema(columns)


def _read_column(entry: Any, where: str) -> ColumnSchema:
    if not isinstance(entry, Mapping):
        raise SchemaError(f"{where}: expected an object, got {_json_type(entry)}")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}.name: expected a non-empty string, got {json.dumps(name)}")
    where = f"{where} ({name!r})"
    for key in entry:
        if key not in _COLUMN_FIELDS:
            raise SchemaError(
                f"{where}: unknown field {key!r}; a column has {', '.join(_COLUMN_FIELDS)}"
            )
    kind = entry.get("kind")
    if not isinstance(kind, str) or not (kind in _SIMPLE_KINDS or _TIMESTAMP.match(kind)):
        raise SchemaError(
            f"{where}.kind: expected one of {', '.join(_SIMPLE_KINDS)} or timestamp[unit] / "
            f"timestamp[unit, timezone] with unit s, ms, us or ns; got {json.dumps(kind)}"
        )

    def flag(key: str) -> bool:
        value = entry.get(key)
        if value is None:
            return True
        if not isinstance(value, bool):
            raise SchemaError(f"{where}.{key}: expected true or false, got {json.dumps(value)}")
        return value

    def only_for(key: str, allowed: bool, kinds: str) -> None:
        if entry.get(key) is not None and not allowed:
            raise SchemaError(f"{where}.{key}: only {kinds} columns have it, this one is {kind}")

    nullable = flag("nullable")
    fraction = entry.get("max_null_fraction")
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise SchemaError(
                f"{where}.max_null_fraction: expected a number, got {json.dumps(fraction)}"
            )
        if not 0 <= fraction <= 1:
            raise SchemaError(f"{where}.max_null_fraction: {fraction} is not within [0, 1]")
        if not nullable and fraction != 0:
            raise SchemaError(
                f"{where}.max_null_fraction: must be 0 for a column that is not nullable"
            )
    elif not nullable:
        fraction = 0.0

    numeric = kind not in ("boolean", "string")
    only_for("range", numeric, "float, integer, date and timestamp")
    bounds = entry.get("range")
    range_: tuple[float, float] | None = None
    if bounds is not None:
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise SchemaError(f"{where}.range: expected [min, max], got {json.dumps(bounds)}")
        low = _parse_bound(kind, bounds[0], f"{where}.range[0]")
        high = _parse_bound(kind, bounds[1], f"{where}.range[1]")
        if low > high:
            raise SchemaError(f"{where}.range: the minimum is above the maximum")
        range_ = (low, high)

    for key in _FLOAT_RULES:
        only_for(key, kind == "float", "float")
    only_for("domain", kind == "string", "string")
    domain = entry.get("domain")
    if domain is not None:
        if not isinstance(domain, list) or not all(isinstance(v, str) for v in domain):
            raise SchemaError(f"{where}.domain: expected a list of strings")
        if len(set(domain)) != len(domain):
            duplicate = next(v for v in domain if domain.count(v) > 1)
            raise SchemaError(f"{where}.domain: {duplicate!r} is listed twice")
    comment = entry.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise SchemaError(f"{where}.comment: expected a string, got {json.dumps(comment)}")
    return ColumnSchema(
        name=name,
        kind=kind,
        nullable=nullable,
        max_null_fraction=None if fraction is None else float(fraction),
        range=range_,
        allow_nan=flag("allow_nan"),
        allow_positive_infinity=flag("allow_positive_infinity"),
        allow_negative_infinity=flag("allow_negative_infinity"),
        domain=None if domain is None else tuple(domain),
        comment=comment,
    )


def _dumps(value: Any, depth: int = 0) -> str:
    """JSON indented by two spaces, with lists of scalars on one line while that line is short
    (a range; a small domain), so that the document reads and diffs well."""
    inline = json.dumps(value, ensure_ascii=False, allow_nan=False)
    if isinstance(value, dict) and value:
        items = [
            f"{json.dumps(k, ensure_ascii=False)}: {_dumps(v, depth + 1)}" for k, v in value.items()
        ]
        opening, closing = "{", "}"
    elif isinstance(value, list) and value:
        scalars = not any(isinstance(v, dict | list) for v in value)
        if scalars and len(inline) + 2 * depth <= INLINE_WIDTH:
            return inline
        items = [_dumps(v, depth + 1) for v in value]
        opening, closing = "[", "]"
    else:
        return inline
    pad = "  " * (depth + 1)
    return f"{opening}\n{pad}" + f",\n{pad}".join(items) + f"\n{'  ' * depth}{closing}"


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__
