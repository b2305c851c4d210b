"""The one way the transport opens SQLite: WAL, full fsync, shared between threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with `synchronous=FULL` (a committed row survives a power cut),
    usable from several threads: callers serialise access with their own lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    return db
