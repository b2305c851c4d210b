"""Devices' telemetry windows: each window's counters and message id (its profiles are merged
per device and bucket, device_profiles.py)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from .database import Cursor, Database, device_filter
from .devices import register_device


@dataclass(frozen=True)
class TelemetryWindow:
    device_id: str
    bundle_name: str
    bundle_version: int
    window_start: float
    window_end: float
    count: int
    errors: int
    latency: dict[str, float] = field(default_factory=dict)
    message_id: str | None = None


#: A window as `telemetry_windows` stores it (device, message id, bundle name, version, start,
#: end, count, errors, latency JSON), then its frame's index in the batch (TelemetryBatch.rows).
WindowRow = tuple[str, str, str, int, float, float, int, int, str, int]


class TelemetryQueries(Database):
    """Queries on the telemetry_windows table."""

    def record_telemetry(self, window: TelemetryWindow) -> bool:
        """Store a telemetry window; False if its message id was seen before."""
        with self.transaction() as cursor:
            register_device(cursor, window.device_id)
            inserted = cursor.execute(
                f"INSERT INTO telemetry_windows ({_COLUMNS}) VALUES ({_MARKS}) "
                "ON CONFLICT (message_id) DO NOTHING",
                _values(window),
            ).rowcount
        return inserted == 1

    def telemetry(
        self,
        bundle_name: str,
        bundle_version: int,
        since: float = 0.0,
        devices: Collection[str] | None = None,
    ) -> list[TelemetryWindow]:
        """A bundle version's windows that started at or after `since` (of `devices` only,
        when given), oldest first."""
        query = (
            f"SELECT {_COLUMNS} FROM telemetry_windows WHERE bundle_name = ? "
            "AND bundle_version = ? AND window_start >= ?"
        )
        params: list[Any] = [bundle_name, bundle_version, since]
        of_devices = device_filter(devices)
        if of_devices is None:
            return []
        clause, device_ids = of_devices
        with self.transaction() as cursor:
            statement = f"{query}{clause} ORDER BY window_start, id"
            rows = cursor.execute(statement, params + device_ids).all()
        return [_telemetry(row) for row in rows]


_COLUMNS = (
    "device_id, message_id, bundle_name, bundle_version, window_start, window_end, count, "
    "errors, latency"
)
_MARKS = ", ".join("?" * len(_COLUMNS.split(",")))


def insert_windows(cursor: Cursor, rows: Sequence[WindowRow]) -> None:
    """Insert window rows (registering their devices); one already stored is skipped."""
    cursor.execute_many(
        "INSERT INTO devices (id) VALUES (?) ON CONFLICT (id) DO NOTHING",
        [(device,) for device in sorted({row[0] for row in rows})],
    )
    cursor.execute_many(
        f"INSERT INTO telemetry_windows ({_COLUMNS}) VALUES ({_MARKS}) "
        "ON CONFLICT (message_id) DO NOTHING",
        [row[:-1] for row in rows],
    )


def _values(window: TelemetryWindow) -> tuple[Any, ...]:
    return (
        window.device_id,
        window.message_id,
        window.bundle_name,
        window.bundle_version,
        window.window_start,
        window.window_end,
        window.count,
        window.errors,
        json.dumps(window.latency),
    )


def _telemetry(row: dict[str, Any]) -> TelemetryWindow:
    return TelemetryWindow(**{**row, "latency": json.loads(row["latency"])})
