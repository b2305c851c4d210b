"""Exact drift metrics from raw data (`drift(..., exact=True)`): every metric the profiles
estimate, computed on all the values, to check the estimates or to match scipy, Evidently and
NannyML digit for digit. It holds both datasets' compared columns in memory, so it is meant for
checks and samples, not for the billions of rows that profiles serve."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._core import drift_exact_categorical, drift_exact_numeric
from ..exceptions import SchemaError
from ..sources import named_files
from .profile import Source


def exact_metrics(
    reference: Source, current: Source, columns: Sequence[str]
) -> dict[str, dict[str, Any] | None]:
    """Each of `columns` compared on all its values: `drift_exact_numeric` for numbers and
    temporal values (as integer counts since the epoch), `drift_exact_categorical` for strings
    and booleans; None for a column with no value on one side."""
    ref, cur = _table(reference, columns), _table(current, columns)
    return {name: _compare(ref.column(name), cur.column(name), name) for name in columns}


def _table(source: Source, columns: Sequence[str]) -> pa.Table:
    paths = named_files(source)
    table = pa.table(source) if paths is None else pa.concat_tables(map(pq.read_table, paths))
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise SchemaError(f"exact drift: column '{missing[0]}': not in the data")
    return table.select(list(columns))


def _compare(
    reference: pa.ChunkedArray, current: pa.ChunkedArray, name: str
) -> dict[str, Any] | None:
    kind = reference.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind):
            return drift_exact_categorical(_categories(reference), _categories(current))
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind):
            return drift_exact_numeric(_numbers(reference), _numbers(current))
    except ValueError:  # a side has no value left: nothing to compare
        return None
    raise SchemaError(f"exact drift: column '{name}': cannot compare values of type {kind}")


def _numbers(column: pa.ChunkedArray) -> Any:
    if pa.types.is_temporal(column.type):
        column = column.cast(pa.int64())
    return column.cast(pa.float64()).fill_null(float("nan")).to_numpy()


def _categories(column: pa.ChunkedArray) -> list[str | None]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_boolean(column.type):
        column = pc.if_else(column, "true", "false")
    return column.cast(pa.string()).to_pylist()
