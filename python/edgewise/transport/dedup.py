"""The receiving side of at-least-once delivery: remember which message ids were seen.

QoS 1 and the outbox's re-send after a restart both deliver a message more than once. The
collector asks `SeenIds.first_time(device, id)` and acts only on True. Ids are scoped by the
device (taken from the topic, which the broker ACL ties to the sender), so one device cannot
suppress another's messages by reusing its ids. Ids are forgotten after `retention` seconds
(default 7 days: far longer than any re-send window), which keeps the table bounded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ._sqlite import open_database

DEFAULT_RETENTION = 7 * 24 * 3600.0
_PRUNE_EVERY = 1000  # inserts between prunes of expired ids


class SeenIds:
    def __init__(self, path: str | Path, retention: float = DEFAULT_RETENTION) -> None:
        self.path = Path(path)
        self.retention = retention
        self._lock = threading.Lock()
        self._inserts = 0
        self._db = open_database(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS seen (device TEXT NOT NULL, id TEXT NOT NULL, "
            "at REAL NOT NULL, PRIMARY KEY (device, id)) WITHOUT ROWID"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_at ON seen (at)")

    def first_time(self, device: str, message_id: str, now: float | None = None) -> bool:
        """True the first time (device, id) is offered, False on every later offer."""
        now = time.time() if now is None else now
        with self._lock, self._db:
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO seen (device, id, at) VALUES (?, ?, ?)",
                (device, message_id, now),
            ).rowcount
            self._inserts += inserted
            if self._inserts >= _PRUNE_EVERY:
                self._inserts = 0
                self._db.execute("DELETE FROM seen WHERE at < ?", (now - self.retention,))
        return inserted == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()
