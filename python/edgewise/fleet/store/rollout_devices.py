"""The devices a rollout reaches: their state, the commands sent to them and the events that
answer those commands (fleet/rollouts/ decides what they mean)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .database import Cursor, Database
from .devices import DeviceEvent

#: Device states in which a command is out and its answer awaited.
IN_FLIGHT = ("sent", "installing", "rolling_back")


@dataclass(frozen=True)
class RolloutDevice:
    rollout_id: int
    device_id: str
    wave: int
    state: str
    reason: str | None
    updated_at: float
    sent_at: float | None
    seq: int | None
    event_mark: int
    previous_name: str | None
    previous_version: int | None
    switched_at: float | None
    rollback_sent_at: float | None

    @property
    def previous(self) -> tuple[str, int] | None:
        if self.previous_name is None or self.previous_version is None:
            return None
        return (self.previous_name, self.previous_version)


# Columns the engine may change on a device (never from user input).
_DEVICE_COLUMNS = frozenset(
    {
        "state",
        "reason",
        "switched_at",
        "sent_at",
        "seq",
        "event_mark",
        "rollback_sent_at",
        "previous_name",
        "previous_version",
    }
)


class RolloutDeviceQueries(Database):
    """Queries on the rollout_devices table."""

    def rollout_devices(self, rollout_id: int) -> list[RolloutDevice]:
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY wave, device_id",
                (rollout_id,),
            ).all()
        return [RolloutDevice(**row) for row in rows]

    def add_rollout_devices(
        self, rollout_id: int, devices: Sequence[tuple[str, int]], now: float
    ) -> None:
        """Add devices that newly match the rollout's selector (ignoring ones already in)."""
        with self.transaction() as cursor:
            insert_devices(cursor, rollout_id, devices, now)

    def update_rollout_devices(
        self, rollout_id: int, changes: Mapping[str, Mapping[str, Any]], now: float
    ) -> None:
        """Apply each device's column changes, in one transaction."""
        with self.transaction() as cursor:
            for device_id, columns in changes.items():
                check_columns(columns, _DEVICE_COLUMNS)
                update_row(
                    cursor,
                    "rollout_devices",
                    columns,
                    now,
                    "rollout_id = ? AND device_id = ?",
                    (rollout_id, device_id),
                )

    def claim_rollout_devices(
        self,
        rollout_id: int,
        claims: Mapping[str, Mapping[str, Any]],
        now: float,
        *,
        from_state: str,
        rollout_states: Collection[str],
    ) -> list[str]:
        """Move devices out of `from_state` with their changes, noting the last event id so
        that only later events answer the command about to go out. Only devices still in
        `from_state`, of a rollout still in one of `rollout_states`, are claimed (so a command
        is never sent twice, nor after a pause or abort has been stored); their ids."""
        claimed: list[str] = []
        with self.transaction() as cursor:
            if not lock_rollout(cursor, rollout_id, rollout_states):
                return claimed
            row = cursor.execute("SELECT COALESCE(MAX(id), 0) AS mark FROM device_events").one()
            mark = int(row["mark"]) if row else 0
            for device_id, columns in claims.items():
                check_columns(columns, _DEVICE_COLUMNS)
                if update_row(
                    cursor,
                    "rollout_devices",
                    {**columns, "event_mark": mark},
                    now,
                    "rollout_id = ? AND device_id = ? AND state = ?",
                    (rollout_id, device_id, from_state),
                ):
                    claimed.append(device_id)
        return claimed

    def rollout_answers(self, rollout_id: int) -> list[DeviceEvent]:
        """The events that came after the latest command to each device with one out."""
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT e.device_id, e.kind, e.at, e.detail, e.message_id FROM device_events e "
                "JOIN rollout_devices d ON d.device_id = e.device_id "
                "WHERE d.rollout_id = ? AND d.state IN (?, ?, ?) AND e.id > d.event_mark "
                "ORDER BY e.id",
                (rollout_id, *IN_FLIGHT),
            ).all()
        return [DeviceEvent(**{**row, "detail": json.loads(row["detail"])}) for row in rows]

    def rollout_device_counts(self, rollout_id: int | None = None) -> dict[int, dict[str, int]]:
        """How many devices each rollout (or only `rollout_id`) has in each state."""
        query = "SELECT rollout_id, state, COUNT(*) AS n FROM rollout_devices"
        params: tuple[Any, ...] = ()
        if rollout_id is not None:
            query, params = query + " WHERE rollout_id = ?", (rollout_id,)
        with self.transaction() as cursor:
            rows = cursor.execute(query + " GROUP BY rollout_id, state", params).all()
        counts: dict[int, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(int(row["rollout_id"]), {})[row["state"]] = int(row["n"])
        return counts

    def install_commands_since(self, rollout_id: int, since: float) -> int:
        with self.transaction() as cursor:
            row = cursor.execute(
                "SELECT COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ? AND sent_at > ?",
                (rollout_id, since),
            ).one()
        return int(row["n"]) if row else 0

    def wave_request_totals(self, rollout_id: int, wave: int) -> tuple[int, int]:
        """(requests, errors) the wave's devices served with the rollout's bundle since they
        switched to it, from their telemetry."""
        with self.transaction() as cursor:
            row = cursor.execute(
                "SELECT COALESCE(SUM(t.count), 0) AS requests, "
                "COALESCE(SUM(t.errors), 0) AS errors FROM telemetry_windows t "
                "JOIN rollout_devices d ON d.device_id = t.device_id "
                "JOIN rollouts r ON r.id = d.rollout_id "
                "WHERE d.rollout_id = ? AND d.wave = ? AND d.state IN ('succeeded', 'skipped') "
                "AND t.bundle_name = r.bundle_name AND t.bundle_version = r.bundle_version "
                "AND t.window_start >= d.switched_at",
                (rollout_id, wave),
            ).one()
        return (int(row["requests"]), int(row["errors"])) if row else (0, 0)


def insert_devices(
    cursor: Cursor, rollout_id: int, devices: Sequence[tuple[str, int]], now: float
) -> None:
    for device_id, wave in devices:
        cursor.execute(
            "INSERT INTO rollout_devices (rollout_id, device_id, wave, state, updated_at) "
            "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (rollout_id, device_id) DO NOTHING",
            (rollout_id, device_id, wave, now),
        )


def update_row(
    cursor: Cursor,
    table: str,
    columns: Mapping[str, Any],
    now: float | None,
    where: str,
    params: Sequence[Any],
) -> int:
    values = dict(columns)
    if now is not None:
        values["updated_at"] = now
    assignments = ", ".join(f"{column} = ?" for column in values)
    return cursor.execute(
        f"UPDATE {table} SET {assignments} WHERE {where}", [*values.values(), *params]
    ).rowcount


def check_columns(columns: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"not changeable here: {', '.join(sorted(unknown))}")


def lock_rollout(cursor: Cursor, rollout_id: int, states: Collection[str]) -> bool:
    """Lock the rollout for this transaction if it is in one of `states`; whether it is. A
    change that depends on its state then cannot interleave with another (PostgreSQL locks
    the updated row; SQLite's write transactions already run one at a time)."""
    marks = ", ".join("?" for _ in states)
    return bool(
        cursor.execute(
            f"UPDATE rollouts SET updated_at = updated_at WHERE id = ? AND state IN ({marks})",
            (rollout_id, *states),
        ).rowcount
    )
