"""Each device's telemetry profiles merged per bundle version and time bucket: what drift over
a subset of devices (a rollout wave's) is computed from, without keeping every window's."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Cursor, Database, device_filter

_COLUMNS = (
    "device_id, bundle_name, bundle_version, bucket_start, bucket_seconds, windows, "
    "input_profile, output_profile"
)


@dataclass(frozen=True)
class DeviceProfiles:
    """One device's windows of one bundle version in one bucket: their profiles merged."""

    device_id: str
    bundle_name: str
    bundle_version: int
    bucket_start: float
    bucket_seconds: float
    windows: int = 0
    input_profile: bytes | None = None
    output_profile: bytes | None = None

    @property
    def key(self) -> tuple[str, str, int, float]:
        return (self.device_id, self.bundle_name, self.bundle_version, self.bucket_start)


class DeviceProfileQueries(Database):
    """Queries on the telemetry_device_profiles table."""

    def device_profiles(
        self, bundle: tuple[str, int], since: float = 0.0, devices: Collection[str] | None = None
    ) -> list[DeviceProfiles]:
        """The bundle version's per-device profiles of the buckets that end after `since` (of
        `devices` only, when given), oldest first."""
        query = (
            f"SELECT {_COLUMNS} FROM telemetry_device_profiles WHERE bundle_name = ? "
            "AND bundle_version = ? AND bucket_start + bucket_seconds > ?"
        )
        params: list[Any] = [bundle[0], bundle[1], since]
        of_devices = device_filter(devices)
        if of_devices is None:
            return []
        clause, device_ids = of_devices
        with self.transaction() as cursor:
            statement = f"{query}{clause} ORDER BY bucket_start, device_id"
            rows = cursor.execute(statement, params + device_ids).all()
        return [_row(row) for row in rows]


def stored_device_profiles(
    cursor: Cursor, keys: Sequence[tuple[str, str, int, float]]
) -> dict[tuple[str, str, int, float], DeviceProfiles]:
    """The stored rows of `keys` (device, bundle name, version, bucket start) that exist."""
    found = {}
    for device, name, version, start in keys:
        row = cursor.execute(
            f"SELECT {_COLUMNS} FROM telemetry_device_profiles WHERE device_id = ? "
            "AND bundle_name = ? AND bundle_version = ? AND bucket_start = ?",
            (device, name, version, start),
        ).one()
        if row is not None:
            stored = _row(row)
            found[stored.key] = stored
    return found


def upsert_device_profiles(cursor: Cursor, rows: Sequence[DeviceProfiles]) -> None:
    cursor.execute_many(
        f"INSERT INTO telemetry_device_profiles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (bundle_name, bundle_version, bucket_start, device_id) DO UPDATE SET "
        "windows = excluded.windows, input_profile = excluded.input_profile, "
        "output_profile = excluded.output_profile",
        [
            (
                r.device_id,
                r.bundle_name,
                r.bundle_version,
                r.bucket_start,
                r.bucket_seconds,
                r.windows,
                r.input_profile,
                r.output_profile,
            )
            for r in rows
        ],
    )


def _row(row: dict[str, Any]) -> DeviceProfiles:
    def as_bytes(value: Any) -> bytes | None:
        return None if value is None else bytes(value)  # PostgreSQL hands back memoryview

    return DeviceProfiles(
        device_id=row["device_id"],
        bundle_name=row["bundle_name"],
        bundle_version=int(row["bundle_version"]),
        bucket_start=float(row["bucket_start"]),
        bucket_seconds=float(row["bucket_seconds"]),
        windows=int(row["windows"]),
        input_profile=as_bytes(row["input_profile"]),
        output_profile=as_bytes(row["output_profile"]),
    )
