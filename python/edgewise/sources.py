"""Where data comes from: Parquet files named directly, found under directories, or matched by
glob patterns."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .exceptions import DataFileError


def resolve_inputs(sources: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Parquet files named directly, found under directories, or matched by glob patterns."""
    found: list[Path] = []
    for source in sources:
        text = os.fspath(source)
        path = Path(text)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        elif path.exists():
            matches = [path]
        else:
            raise DataFileError(f"{text}: no such file or directory")
        if not matches:
            raise DataFileError(f"{text}: no Parquet files found")
        found.extend(matches)
    return list(dict.fromkeys(found))


def named_files(source: Any) -> list[Path] | None:
    """The Parquet files `source` names when it is a path, a pattern or a sequence of them;
    None when it is something else (a table, a data frame)."""
    if isinstance(source, str | os.PathLike):
        return resolve_inputs([source])
    if isinstance(source, Sequence) and all(isinstance(s, str | os.PathLike) for s in source):
        return resolve_inputs(source)
    return None


def describe_source(source: Any) -> str:
    """A source in words for a report: its paths, or the kind of table it is."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    if isinstance(source, Sequence) and all(isinstance(s, str | os.PathLike) for s in source):
        return ", ".join(os.fspath(s) for s in source)
    return type(source).__name__
