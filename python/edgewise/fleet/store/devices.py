"""Devices as they report themselves, and their events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..selector import Selector
from .audit_log import AuditWrite, append_audit
from .database import Cursor, Database


@dataclass(frozen=True)
class Device:
    """A device as the registry knows it. `labels` are what selectors match: the labels the
    device reports in its state, overridden by those an operator set (`operator_labels`)."""

    id: str
    labels: dict[str, str] = field(default_factory=dict)
    online: bool = False
    last_seen: float | None = None
    bundle_name: str | None = None
    bundle_version: int | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    operator_labels: dict[str, str] = field(default_factory=dict)
    reported_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceEvent:
    device_id: str
    kind: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None


class DeviceQueries(Database):
    """Queries on the devices and device_events tables."""

    def upsert_device(
        self,
        device_id: str,
        *,
        online: bool | None = None,
        last_seen: float | None = None,
        bundle: tuple[str, int] | None = None,
        slots: Mapping[str, Any] | None = None,
    ) -> Device:
        """Record what a device reported about itself; fields left as None keep their value."""
        updates: dict[str, Any] = {}
        if online is not None:
            updates["online"] = int(online)
        if last_seen is not None:
            updates["last_seen"] = last_seen
        if bundle is not None:
            updates["bundle_name"], updates["bundle_version"] = bundle
        if slots is not None:
            updates["slots"] = json.dumps(dict(slots))
        with self.transaction() as cursor:
            cursor.execute(
                "INSERT INTO devices (id) VALUES (?) ON CONFLICT (id) DO NOTHING", (device_id,)
            )
            if updates:
                assignments = ", ".join(f"{column} = ?" for column in updates)
                cursor.execute(
                    f"UPDATE devices SET {assignments} WHERE id = ?", [*updates.values(), device_id]
                )
            row = _fetch_device(cursor, device_id)
        assert row is not None  # inserted above, in the same transaction
        return _device(row)

    def update_labels(
        self,
        device_id: str,
        changes: Mapping[str, str | None],
        audit: AuditWrite | None = None,
    ) -> Device | None:
        """Set labels (a value) or remove them (None); None if the device is unknown."""
        with self.transaction() as cursor:
            row = _fetch_device(cursor, device_id)
            if row is None:
                return None
            labels = json.loads(row["labels"])
            for key, value in changes.items():
                if value is None:
                    labels.pop(key, None)
                else:
                    labels[key] = value
            cursor.execute(
                "UPDATE devices SET labels = ? WHERE id = ?", (json.dumps(labels), device_id)
            )
            if audit is not None:
                append_audit(cursor, audit)
        return _device({**row, "labels": json.dumps(labels)})

    def device(self, device_id: str) -> Device | None:
        with self.transaction() as cursor:
            row = _fetch_device(cursor, device_id)
        return None if row is None else _device(row)

    def devices(self, selector: Selector | str | None = None) -> list[Device]:
        """The devices whose labels match the selector, by id."""
        if not isinstance(selector, Selector):
            selector = Selector.parse(selector)
        with self.transaction() as cursor:
            rows = cursor.execute("SELECT * FROM devices ORDER BY id").all()
        # Labels are matched here rather than in SQL: the two databases query JSON differently,
        # and a fleet's device table is small next to its telemetry.
        return [device for device in map(_device, rows) if selector.matches(device.labels)]

    def count_devices(self) -> dict[str, int]:
        with self.transaction() as cursor:
            rows = cursor.execute("SELECT online, COUNT(*) AS n FROM devices GROUP BY online").all()
        counts = {"online": 0, "offline": 0}
        for row in rows:
            counts["online" if row["online"] else "offline"] = int(row["n"])
        return counts

    def record_event(self, event: DeviceEvent) -> bool:
        """Store an event (registering its device); False if its message id was seen before."""
        with self.transaction() as cursor:
            register_device(cursor, event.device_id)
            inserted = cursor.execute(
                "INSERT INTO device_events (device_id, message_id, at, kind, detail) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING",
                (event.device_id, event.message_id, event.at, event.kind, json.dumps(event.detail)),
            ).rowcount
        return inserted == 1

    def events(self, device_id: str, limit: int = 100) -> list[DeviceEvent]:
        """The device's latest events, newest first."""
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT device_id, kind, at, detail, message_id FROM device_events "
                "WHERE device_id = ? ORDER BY at DESC, id DESC LIMIT ?",
                (device_id, limit),
            ).all()
        return [DeviceEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    def count_events(self) -> int:
        with self.transaction() as cursor:
            row = cursor.execute("SELECT COUNT(*) AS n FROM device_events").one()
        return int(row["n"]) if row else 0


def register_device(cursor: Cursor, device_id: str) -> None:
    """Make sure the device has a row (messages can arrive from a device not seen before)."""
    cursor.execute("INSERT INTO devices (id) VALUES (?) ON CONFLICT (id) DO NOTHING", (device_id,))


def _fetch_device(cursor: Cursor, device_id: str) -> dict[str, Any] | None:
    return cursor.execute("SELECT * FROM devices WHERE id = ?", (device_id,)).one()


def _device(row: dict[str, Any]) -> Device:
    operator, reported = json.loads(row["labels"]), json.loads(row["reported_labels"])
    return Device(
        id=row["id"],
        labels={**reported, **operator},
        operator_labels=operator,
        reported_labels=reported,
        online=bool(row["online"]),
        last_seen=row["last_seen"],
        bundle_name=row["bundle_name"],
        bundle_version=row["bundle_version"],
        slots=json.loads(row["slots"]),
    )
