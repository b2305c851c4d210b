"""Writes that survive a crash at any instant: whole new file or the old one, never a mix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .crashpoints import crash_point

TEMP_SUFFIX = ".tmp"


def fsync_directory(directory: Path) -> None:
    """Make renames and new entries in `directory` durable (a rename lives in the directory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(path: Path, data: bytes, point: str | None = None) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path`, then
    fsync the directory. `point` names the crash point between the write and the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if point is not None:
            crash_point(point)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def move_durably(source: Path, target: Path) -> None:
    """Rename `source` (already fsynced) to `target` on the same file system, durably."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    fsync_directory(target.parent)
    if source.parent != target.parent:
        fsync_directory(source.parent)


def remove_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files an interrupted `replace_durably` left in `directory`."""
    removed = [p for p in directory.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in removed:
        path.unlink()
    return removed
