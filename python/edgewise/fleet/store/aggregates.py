"""Telemetry merged per bundle version and time bucket: the collector's time series, and the
merged profiles that fleet-wide drift is computed from."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .database import Cursor, Database
from .device_profiles import DeviceProfiles, stored_device_profiles, upsert_device_profiles
from .reports import existing_message_ids
from .telemetry import WindowRow, insert_windows

_COLUMNS = (
    "bundle_name, bundle_version, bucket_start, bucket_seconds, windows, requests, rows, "
    "errors, latency, corrupt_profiles, input_profile, output_profile"
)


@dataclass(frozen=True)
class Aggregate:
    """One bundle version's telemetry in one time bucket, summed over windows and devices."""

    bundle_name: str
    bundle_version: int
    bucket_start: float
    bucket_seconds: float
    windows: int = 0
    requests: float = 0.0
    rows: float = 0.0
    errors: float = 0.0
    #: Latency histogram: requests per bucket, by the metric names devices send.
    latency: dict[str, float] = field(default_factory=dict)
    corrupt_profiles: int = 0
    input_profile: bytes | None = None
    output_profile: bytes | None = None

    @property
    def key(self) -> tuple[str, int, float]:
        return (self.bundle_name, self.bundle_version, self.bucket_start)


class StoredRows:
    """What a batch's buckets already hold, read inside the batch's transaction."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def device_profiles(
        self, keys: Sequence[tuple[str, str, int, float]]
    ) -> dict[tuple[str, str, int, float], DeviceProfiles]:
        return stored_device_profiles(self._cursor, keys)

    def aggregates(self, keys: Sequence[tuple[str, int, float]]) -> dict[Any, Aggregate]:
        return _stored(self._cursor, keys)


#: Given the window rows not stored before and the rows their buckets hold, the rows to store in
#: their place: each device's merged profiles and the fleet's aggregates (stored ones included).
Summarize = Callable[
    [Sequence[WindowRow], StoredRows], tuple[list[DeviceProfiles], list[Aggregate]]
]


class AggregateQueries(Database):
    """Telemetry windows, their devices' merged profiles and their aggregates, written
    together."""

    def record_telemetry_batch(self, windows: Sequence[WindowRow], summarize: Summarize) -> int:
        """Store the window rows whose message id is neither stored nor earlier in `windows`,
        and the rows `summarize` makes of them, in one transaction; the number of windows
        stored. The redelivery check and the writes share the transaction, so no window is
        ever counted twice, even with another writer."""
        with self.transaction() as cursor:
            fresh = _unseen(cursor, windows)
            if not fresh:
                return 0
            insert_windows(cursor, fresh)
            devices, aggregates = summarize(fresh, StoredRows(cursor))
            upsert_device_profiles(cursor, devices)
            cursor.execute_many(
                f"INSERT INTO telemetry_aggregates ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (bundle_name, bundle_version, bucket_start) DO UPDATE SET "
                "windows = excluded.windows, requests = excluded.requests, "
                "rows = excluded.rows, errors = excluded.errors, latency = excluded.latency, "
                "corrupt_profiles = excluded.corrupt_profiles, "
                "input_profile = excluded.input_profile, output_profile = excluded.output_profile",
                [_values(a) for a in aggregates],
            )
        return len(fresh)

    def aggregates(
        self, bundle: tuple[str, int], since: float = 0.0, until: float | None = None
    ) -> list[Aggregate]:
        """The bundle version's aggregates of the buckets that end after `since` (and start
        before `until`), oldest first."""
        query = (
            f"SELECT {_COLUMNS} FROM telemetry_aggregates WHERE bundle_name = ? "
            "AND bundle_version = ? AND bucket_start + bucket_seconds > ?"
        )
        params: list[Any] = [bundle[0], bundle[1], since]
        if until is not None:
            query, params = query + " AND bucket_start < ?", [*params, until]
        with self.transaction() as cursor:
            rows = cursor.execute(query + " ORDER BY bucket_start", params).all()
        return [_aggregate(row) for row in rows]

    def telemetry_bundles(self, since: float = 0.0) -> list[tuple[str, int]]:
        """The bundle versions with telemetry in buckets that end after `since`."""
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT DISTINCT bundle_name, bundle_version FROM telemetry_aggregates "
                "WHERE bucket_start + bucket_seconds > ? ORDER BY bundle_name, bundle_version",
                (since,),
            ).all()
        return [(row["bundle_name"], int(row["bundle_version"])) for row in rows]


def _unseen(cursor: Cursor, windows: Sequence[WindowRow]) -> list[WindowRow]:
    seen = existing_message_ids(cursor, "telemetry_windows", [row[1] for row in windows])
    fresh = []
    for row in windows:
        if row[1] not in seen:
            seen.add(row[1])
            fresh.append(row)
    return fresh


def _stored(cursor: Cursor, keys: Sequence[tuple[str, int, float]]) -> dict[Any, Aggregate]:
    found = {}
    for name, version, start in keys:
        row = cursor.execute(
            f"SELECT {_COLUMNS} FROM telemetry_aggregates WHERE bundle_name = ? "
            "AND bundle_version = ? AND bucket_start = ?",
            (name, version, start),
        ).one()
        if row is not None:
            aggregate = _aggregate(row)
            found[aggregate.key] = aggregate
    return found


def _values(a: Aggregate) -> tuple[Any, ...]:
    return (
        a.bundle_name,
        a.bundle_version,
        a.bucket_start,
        a.bucket_seconds,
        a.windows,
        a.requests,
        a.rows,
        a.errors,
        json.dumps(a.latency, sort_keys=True),
        a.corrupt_profiles,
        a.input_profile,
        a.output_profile,
    )


def _aggregate(row: dict[str, Any]) -> Aggregate:
    def as_bytes(value: Any) -> bytes | None:
        return None if value is None else bytes(value)  # PostgreSQL hands back memoryview

    return Aggregate(
        bundle_name=row["bundle_name"],
        bundle_version=int(row["bundle_version"]),
        bucket_start=float(row["bucket_start"]),
        bucket_seconds=float(row["bucket_seconds"]),
        windows=int(row["windows"]),
        requests=float(row["requests"]),
        rows=float(row["rows"]),
        errors=float(row["errors"]),
        latency=json.loads(row["latency"]),
        corrupt_profiles=int(row["corrupt_profiles"]),
        input_profile=as_bytes(row["input_profile"]),
        output_profile=as_bytes(row["output_profile"]),
    )
