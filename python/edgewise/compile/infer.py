"""The input schema of a pipeline, read off its training data."""

from __future__ import annotations

import pandas as pd

from ..exceptions import SchemaError
from ..schema import Column, InputSchema

#: Above this many distinct values a string column is recorded without its domain.
MAX_RECORDED_CATEGORIES = 10_000


def column_kind(series: pd.Series) -> str:
    """The edgewise kind of a pandas column."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype):
        return "string"
    raise SchemaError(f"column '{series.name}': unsupported type {dtype}")


def infer_schema(frame: pd.DataFrame, columns: list[str]) -> InputSchema:
    """Names, kinds, nullability and categorical domains of `columns` in the training data."""
    inferred = []
    for name in columns:
        series = frame[name]
        kind = column_kind(series)
        categories = None
        if kind == "string":
            distinct = series.dropna().astype(str).unique()
            if len(distinct) <= MAX_RECORDED_CATEGORIES:
                categories = sorted(distinct.tolist())
        inferred.append(
            Column(
                name=name,
                kind=kind,
                nullable=bool(series.isna().any()),
                categories=categories,
            )
        )
    return InputSchema(inferred)
