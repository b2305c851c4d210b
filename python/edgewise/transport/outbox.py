"""A durable outbox for telemetry and events: nothing a device has to report is lost.

`Outbox.put` commits the message to SQLite (WAL, `synchronous=FULL`, so it survives a crash and
a power cut) before it returns. An `OutboxPublisher` drains the outbox in order at QoS 1 while
the connection is up and deletes a row only when the broker has acknowledged it (PUBACK). A
message published but not yet acknowledged when the process dies is published again after the
restart, so receivers may see a message twice: every message carries an `id`, and receivers
keep the ids they have seen (`dedup.SeenIds`).

Bound and policy when full: at most `max_messages` rows (default 100,000: at one telemetry
window a minute that is more than two months of outage). When full, the oldest *telemetry*
message is dropped to make room (a later window says more about the device's present than an
old one) and counted in `dropped`. Events (installs, rollbacks, errors) are never dropped: if
the outbox is full of events only, `put` raises `OutboxFullError` and the caller decides.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from pathlib import Path

from ..exceptions import MessageError, OutboxFullError
from ._sqlite import open_database
from .client import Connection
from .messages import Message, Telemetry, encode
from .topics import parse_device_topic

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGES = 100_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- publication order; never reused
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    droppable INTEGER NOT NULL              -- 1 for telemetry, 0 for events
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class Outbox:
    """The SQLite queue itself; safe to use from several threads."""

    def __init__(self, path: str | Path, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, got {max_messages}")
        self.path = Path(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._db = open_database(self.path)
        self._db.executescript(_SCHEMA)

    def put(self, topic: str, message: Message) -> None:
        """Persist `message` for `topic` (a device's report topic); it is on disk when this
        returns."""
        if not parse_device_topic(topic).kind.from_device:
            raise MessageError(f"{topic}: the outbox carries a device's reports only")
        payload = encode(message)
        droppable = isinstance(message, Telemetry)
        with self._lock, self._db:
            if self._count() >= self.max_messages and not self._drop_oldest_telemetry():
                raise OutboxFullError(
                    f"{self.path}: outbox holds {self.max_messages} events, none of which may "
                    "be dropped; is the broker unreachable?"
                )
            self._db.execute(
                "INSERT INTO outbox (topic, payload, droppable) VALUES (?, ?, ?)",
                (topic, payload, int(droppable)),
            )

    def _count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def _drop_oldest_telemetry(self) -> bool:
        dropped = self._db.execute(
            "DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox WHERE droppable = 1)"
        ).rowcount
        if dropped:
            self._db.execute(
                "INSERT INTO counters VALUES ('dropped', 1) "
                "ON CONFLICT (name) DO UPDATE SET value = value + 1"
            )
        return bool(dropped)

    def after(self, seq: int, limit: int) -> list[tuple[int, str, bytes]]:
        """Up to `limit` messages (seq, topic, payload) queued after `seq`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(int(s), str(t), bytes(p)) for s, t, p in rows]

    def remove(self, seq: int) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    @property
    def dropped(self) -> int:
        """Telemetry messages dropped because the outbox was full, over its whole life."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OutboxPublisher:
    """Drains an `Outbox` over a `Connection`, at most `window` messages awaiting PUBACK.

    The window keeps paho's memory bounded during a long backlog; messages beyond it stay on
    disk. Messages in flight when the connection drops are re-sent by paho on reconnect (same
    session), so the publisher hands each row to paho once per process."""

    def __init__(self, outbox: Outbox, connection: Connection, window: int = 20) -> None:
        self.outbox = outbox
        self.connection = connection
        self.window = window
        self._in_flight: dict[int, int] = {}  # paho mid -> outbox seq
        self._last_seq = 0  # the newest row handed to paho
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._settled = threading.Condition()  # notified after acknowledged rows are deleted
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        connection.on_published(self._on_puback)
        connection.on_connected(self.wake)

    def send(self, topic: str, message: Message) -> None:
        """Persist `message` in the outbox, then publish it as soon as the connection allows."""
        self.outbox.put(topic, message)
        self.wake()

    def wake(self) -> None:
        """Look at the outbox now instead of at the next periodic check (once a second)."""
        self._wake.set()

    def wait_empty(self, timeout: float) -> bool:
        """Wait until every message in the outbox was acknowledged (e.g. before a shutdown);
        False if `timeout` seconds passed first."""
        with self._settled:
            return self._settled.wait_for(lambda: len(self.outbox) == 0, timeout)

    def start(self) -> OutboxPublisher:
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _on_puback(self, mid: int) -> None:
        # Runs on the network thread under paho's lock: hand over, do not touch SQLite here.
        self._acks.put(mid)
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            try:
                self._settle_acks()
                if self.connection.is_connected():
                    self._publish_more()
            except sqlite3.Error:
                log.exception("%s: outbox failed; retrying", self.outbox.path)

    def _settle_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            seq = self._in_flight.pop(mid, None)
            if seq is not None:
                self.outbox.remove(seq)
                with self._settled:
                    self._settled.notify_all()

    def _publish_more(self) -> None:
        room = self.window - len(self._in_flight)
        if room <= 0:
            return
        for seq, topic, payload in self.outbox.after(self._last_seq, room):
            info = self.connection.publish(topic, payload)
            self._in_flight[info.mid] = seq
            self._last_seq = seq
