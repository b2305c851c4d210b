"""What devices report about themselves, written a batch at a time: states and events.

The rule for states that arrive out of order (QoS 1 redelivery, a reconnect that delivers the
queued messages and the retained state in either order) is here, next to the write:

- an online state older than the newest state applied (`state_at`) is ignored;
- an offline state is always applied: the broker publishes a device's last will when the
  connection dies, and the will was written when the connection began, so its timestamp is
  older than the online state it ends. (A redelivered offline state that predates a newer
  online one would therefore mark a live device offline until its next state; the control
  client's persistent session makes such a redelivery rare.)
- an offline state says nothing about the bundle, slots and labels: it keeps them;
- `last_seen` is the newest timestamp of any state or event of the device.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .database import Cursor, Database
from .devices import DeviceEvent

#: Parameters per IN (...) list: far below SQLite's and PostgreSQL's limits.
_IN_CHUNK = 500


@dataclass(frozen=True)
class StateReport:
    """One state message of a device, as the registry stores it."""

    device_id: str
    at: float
    online: bool
    bundle: tuple[str, int] | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class _Row:
    """The columns of one device that a batch may change."""

    state_at: float | None
    last_seen: float | None
    online: int
    bundle_name: str | None
    bundle_version: int | None
    slots: str
    reported_labels: str

    def seen(self, at: float) -> None:
        self.last_seen = at if self.last_seen is None else max(self.last_seen, at)

    def apply(self, state: StateReport) -> None:
        self.seen(state.at)
        if state.online and self.state_at is not None and state.at < self.state_at:
            return
        self.state_at = state.at if self.state_at is None else max(self.state_at, state.at)
        self.online = int(state.online)
        if state.online:
            self.bundle_name, self.bundle_version = state.bundle or (None, None)
            self.slots = json.dumps(state.slots, sort_keys=True)
            self.reported_labels = json.dumps(state.labels, sort_keys=True)


class ReportQueries(Database):
    """Batch writes of device states and events (one transaction per batch)."""

    def record_reports(self, states: Sequence[StateReport], events: Sequence[DeviceEvent]) -> int:
        """Apply `states` (in the order given, by the rule above) and store `events`, skipping
        events whose message id was stored before; the number of events newly stored."""
        ids = sorted({s.device_id for s in states} | {e.device_id for e in events})
        if not ids:
            return 0
        with self.transaction() as cursor:
            cursor.execute_many(
                "INSERT INTO devices (id) VALUES (?) ON CONFLICT (id) DO NOTHING",
                [(device,) for device in ids],
            )
            rows = _rows(cursor, ids)
            for state in states:
                rows[state.device_id].apply(state)
            for event in events:
                rows[event.device_id].seen(event.at)
            cursor.execute_many(
                "UPDATE devices SET state_at = ?, last_seen = ?, online = ?, bundle_name = ?, "
                "bundle_version = ?, slots = ?, reported_labels = ? WHERE id = ?",
                [
                    (
                        row.state_at,
                        row.last_seen,
                        row.online,
                        row.bundle_name,
                        row.bundle_version,
                        row.slots,
                        row.reported_labels,
                        device,
                    )
                    for device, row in rows.items()
                ],
            )
            return _insert_events(cursor, events)

    def events_since(self, kind: str, since: float) -> list[DeviceEvent]:
        """Every device's events of `kind` at or after `since`, oldest first."""
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT device_id, kind, at, detail, message_id FROM device_events "
                "WHERE kind = ? AND at >= ? ORDER BY at, id",
                (kind, since),
            ).all()
        return [DeviceEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]


def _rows(cursor: Cursor, ids: Sequence[str]) -> dict[str, _Row]:
    rows = {}
    for chunk in _chunks(ids):
        for row in cursor.execute(
            "SELECT id, state_at, last_seen, online, bundle_name, bundle_version, slots, "
            f"reported_labels FROM devices WHERE id IN ({_marks(chunk)})",
            chunk,
        ).all():
            device = row.pop("id")
            rows[device] = _Row(**row)
    return rows


def _insert_events(cursor: Cursor, events: Sequence[DeviceEvent]) -> int:
    """Insert the events not stored before (nor twice in this batch); how many."""
    seen = existing_message_ids(cursor, "device_events", [e.message_id for e in events])
    new = []
    for event in events:
        if event.message_id is None or event.message_id not in seen:
            new.append(event)
            if event.message_id is not None:
                seen.add(event.message_id)
    cursor.execute_many(
        "INSERT INTO device_events (device_id, message_id, at, kind, detail) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
        [(e.device_id, e.message_id, e.at, e.kind, json.dumps(e.detail)) for e in new],
    )
    return len(new)


def existing_message_ids(cursor: Cursor, table: str, ids: Iterable[str | None]) -> set[str]:
    """Which of `ids` are already in `table`'s message_id column."""
    wanted = sorted({i for i in ids if i is not None})
    found: set[str] = set()
    for chunk in _chunks(wanted):
        rows = cursor.execute(
            f"SELECT message_id FROM {table} WHERE message_id IN ({_marks(chunk)})", chunk
        ).all()
        found.update(row["message_id"] for row in rows)
    return found


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]


def _marks(items: Sequence[object]) -> str:
    return ", ".join("?" * len(items))
