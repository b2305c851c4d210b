"""Profiling data: Parquet files or any Arrow table into a mergeable `Profile`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._core import Batch, ParquetFile, Profile
from ..exceptions import SchemaError
from ..sources import named_files

DEFAULT_K = 200
BATCH_ROWS = 256 * 1024

Source = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Any


def profile(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    sensitive: Sequence[str] = (),
    k: int = DEFAULT_K,
    threads: int | None = None,
) -> Profile:
    """Profile `source` in one streaming pass: Parquet files (paths, directories or glob
    patterns) read row group by row group with bounded memory, or any table with the Arrow
    PyCapsule interface (polars, pyarrow, pandas). `columns` limits the profile to those
    columns; `sensitive` columns keep no raw values (a fixed-bin histogram and hashed
    categories)."""
    paths = named_files(source)
    if paths is None:
        batch = Batch.from_arrow(source)
        if columns is not None:
            batch = batch.select(list(columns))
        result = Profile(batch, k, list(sensitive), threads)
        result.update(batch)
        return result
    files = [ParquetFile(path, threads) for path in paths]
    chosen = [_columns(file, path, columns) for file, path in zip(files, paths, strict=True)]
    # No rows: the first file's column types, to make the profile.
    result = Profile(files[0].read([], *chosen[0]), k, list(sensitive), threads)
    for file, (names, strings) in zip(files, chosen, strict=True):
        result.update_parquet(file, names, strings)
    return result


def _columns(
    file: ParquetFile, path: Path, columns: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The columns to profile and, among them, the string columns: these are read as Arrow
    dictionaries, Parquet's own encoding of them, and profiled per distinct value."""
    kinds = dict(file.column_kinds())
    names = list(kinds) if columns is None else list(columns)
    missing = [name for name in names if name not in kinds]
    if missing:
        raise SchemaError(f"{path}: column '{missing[0]}': not in the file")
    return names, [name for name in names if kinds[name] == "string"]


def _batches(source: Source, columns: Sequence[str] | None, threads: int | None) -> Iterator[Batch]:
    paths = named_files(source)
    if paths is not None:
        return _parquet_batches(paths, columns, threads)
    batch = Batch.from_arrow(source)
    return iter([batch.select(list(columns)) if columns is not None else batch])


def _parquet_batches(
    paths: list[Path], columns: Sequence[str] | None, threads: int | None
) -> Iterator[Batch]:
    """Each file's row groups in batches of about `BATCH_ROWS` rows, string columns as Arrow
    dictionaries, the next batch read while this one is used (by `validate`)."""
    jobs = []
    for path in paths:
        file = ParquetFile(path, threads)
        names, strings = _columns(file, path, columns)
        groups: list[int] = []
        rows = 0
        for index, group_rows in enumerate(file.row_group_rows):
            groups.append(index)
            rows += group_rows
            if rows >= BATCH_ROWS:
                jobs.append((file, groups, names, strings))
                groups, rows = [], 0
        if groups or not jobs:
            jobs.append((file, groups, names, strings))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgewise-read") as pool:
        pending: Future[Batch] | None = None
        for file, groups, names, strings in jobs:
            upcoming = pool.submit(file.read, groups, names, strings)
            if pending is not None:
                yield pending.result()
            pending = upcoming
        if pending is not None:
            yield pending.result()
