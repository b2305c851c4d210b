"""Rollouts, their waves and the state of each device they reach (fleet/rollouts/ decides)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...exceptions import RolloutError
from .audit_log import AuditWrite, append_audit
from .database import Cursor, Database
from .devices import DeviceEvent

#: Device states in which a command is out and its answer awaited.
IN_FLIGHT = ("sent", "installing", "rolling_back")


@dataclass(frozen=True)
class Rollout:
    id: int
    bundle_name: str
    bundle_version: int
    selector: str
    policy: dict[str, Any]
    state: str
    reason: str | None
    wave: int
    rollback: str | None
    created_by: str
    created_at: float
    updated_at: float

    @property
    def bundle(self) -> tuple[str, int]:
        return (self.bundle_name, self.bundle_version)


@dataclass(frozen=True)
class RolloutWave:
    rollout_id: int
    wave: int
    size: str
    state: str
    reason: str | None
    started_at: float | None
    finished_at: float | None


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


@dataclass(frozen=True)
class NewRollout:
    bundle: tuple[str, int]
    selector: str
    policy: Mapping[str, Any]
    wave_sizes: Sequence[str]  # as the operator wrote them, one per wave
    created_by: str


# Columns the engine may change on a device, a wave or a rollout (never from user input).
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
_WAVE_COLUMNS = frozenset({"state", "reason", "started_at", "finished_at"})
_ROLLOUT_COLUMNS = frozenset({"state", "reason", "wave", "rollback"})


class RolloutQueries(Database):
    """Queries on the rollouts, rollout_waves and rollout_devices tables."""

    def create_rollout(
        self,
        new: NewRollout,
        assign: Callable[[int], Sequence[tuple[str, int]]],
        now: float,
        audit: AuditWrite | None = None,
    ) -> Rollout:
        """Store a running rollout with its first wave started; `assign(rollout id)` places
        the devices known now in waves ((device id, wave) pairs)."""
        with self.transaction() as cursor:
            row = cursor.execute(
                "INSERT INTO rollouts (bundle_name, bundle_version, selector, policy, state, "
                "created_by, created_at, updated_at) VALUES (?, ?, ?, ?, 'running', ?, ?, ?) "
                "RETURNING id",
                (*new.bundle, new.selector, json.dumps(dict(new.policy)), new.created_by, now, now),
            ).one()
            assert row is not None
            rollout_id = int(row["id"])
            for wave, size in enumerate(new.wave_sizes):
                cursor.execute(
                    "INSERT INTO rollout_waves (rollout_id, wave, size, state, started_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        rollout_id,
                        wave,
                        size,
                        "running" if wave == 0 else "pending",
                        now if wave == 0 else None,
                    ),
                )
            _insert_devices(cursor, rollout_id, assign(rollout_id), now)
            if audit is not None:
                append_audit(cursor, audit)
            return _fetch_rollout(cursor, rollout_id)

    def rollout(self, rollout_id: int) -> Rollout | None:
        with self.transaction() as cursor:
            row = cursor.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).one()
        return None if row is None else _rollout(row)

    def rollouts(self) -> list[Rollout]:
        """Every rollout, newest first."""
        with self.transaction() as cursor:
            rows = cursor.execute("SELECT * FROM rollouts ORDER BY id DESC").all()
        return [_rollout(row) for row in rows]

    def rollouts_to_tick(self) -> list[Rollout]:
        """Rollouts with work left: running or paused ones, and halted or aborted ones while
        commands are out or devices are still to be rolled back."""
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT * FROM rollouts r WHERE state IN ('running', 'paused') "
                "OR (state IN ('halted', 'aborted') AND EXISTS (SELECT 1 FROM rollout_devices d "
                "WHERE d.rollout_id = r.id AND (d.state IN (?, ?, ?) OR (d.state = 'succeeded' "
                "AND (r.rollback = 'all' OR (r.rollback = 'wave' AND d.wave = r.wave)))))) "
                "ORDER BY id",
                IN_FLIGHT,
            ).all()
        return [_rollout(row) for row in rows]

    def rollout_waves(self, rollout_id: int) -> list[RolloutWave]:
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT * FROM rollout_waves WHERE rollout_id = ? ORDER BY wave", (rollout_id,)
            ).all()
        return [RolloutWave(**row) for row in rows]

    def rollout_devices(self, rollout_id: int) -> list[RolloutDevice]:
        with self.transaction() as cursor:
            rows = cursor.execute(
                "SELECT * FROM rollout_devices WHERE rollout_id = ? ORDER BY wave, device_id",
                (rollout_id,),
            ).all()
        return [RolloutDevice(**row) for row in rows]

    def change_rollout(
        self,
        rollout_id: int,
        now: float,
        *,
        allowed_from: Collection[str],
        audit: AuditWrite | None = None,
        **changes: Any,
    ) -> Rollout:
        """Change a rollout whose state is one of `allowed_from` (else `RolloutError`); a
        change of state also ends the wave in progress when the rollout stops."""
        _check_columns(changes, _ROLLOUT_COLUMNS)
        with self.transaction() as cursor:
            current = _lock_rollout(cursor, rollout_id, allowed_from)
            if current.state not in allowed_from:
                raise RolloutError(
                    f"rollout {rollout_id} is {current.state}; this needs it "
                    f"{' or '.join(sorted(allowed_from))}"
                )
            _update(cursor, "rollouts", changes, now, "id = ?", (rollout_id,))
            if changes.get("state") in ("halted", "aborted"):
                _update(
                    cursor,
                    "rollout_waves",
                    {
                        "state": changes["state"],
                        "reason": changes.get("reason"),
                        "finished_at": now,
                    },
                    None,
                    "rollout_id = ? AND wave = ? AND state = 'running'",
                    (rollout_id, current.wave),
                )
            if audit is not None:
                append_audit(cursor, audit)
            return _fetch_rollout(cursor, rollout_id)

    def advance_rollout(self, rollout_id: int, wave: int, now: float) -> Rollout:
        """Mark `wave` succeeded and start the next one, or complete the rollout after the
        last; a no-op if the rollout is no longer running that wave."""
        with self.transaction() as cursor:
            current = _lock_rollout(cursor, rollout_id, ("running",))
            if current.state != "running" or current.wave != wave:
                return current
            _update(
                cursor,
                "rollout_waves",
                {"state": "succeeded", "reason": None, "finished_at": now},
                None,
                "rollout_id = ? AND wave = ?",
                (rollout_id, wave),
            )
            started = _update(
                cursor,
                "rollout_waves",
                {"state": "running", "started_at": now},
                None,
                "rollout_id = ? AND wave = ?",
                (rollout_id, wave + 1),
            )
            changes: dict[str, Any] = (
                {"wave": wave + 1} if started else {"state": "completed", "reason": None}
            )
            _update(cursor, "rollouts", changes, now, "id = ?", (rollout_id,))
            return _fetch_rollout(cursor, rollout_id)

    def set_wave_reason(self, rollout_id: int, wave: int, reason: str | None) -> None:
        with self.transaction() as cursor:
            _update(
                cursor,
                "rollout_waves",
                {"reason": reason},
                None,
                "rollout_id = ? AND wave = ?",
                (rollout_id, wave),
            )

    def add_rollout_devices(
        self, rollout_id: int, devices: Sequence[tuple[str, int]], now: float
    ) -> None:
        """Add devices that newly match the rollout's selector (ignoring ones already in)."""
        with self.transaction() as cursor:
            _insert_devices(cursor, rollout_id, devices, now)

    def update_rollout_devices(
        self, rollout_id: int, changes: Mapping[str, Mapping[str, Any]], now: float
    ) -> None:
        """Apply each device's column changes, in one transaction."""
        with self.transaction() as cursor:
            for device_id, columns in changes.items():
                _check_columns(columns, _DEVICE_COLUMNS)
                _update(
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
            if _lock_rollout(cursor, rollout_id, rollout_states).state not in rollout_states:
                return claimed
            row = cursor.execute("SELECT COALESCE(MAX(id), 0) AS mark FROM device_events").one()
            mark = int(row["mark"]) if row else 0
            for device_id, columns in claims.items():
                _check_columns(columns, _DEVICE_COLUMNS)
                if _update(
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


def _insert_devices(
    cursor: Cursor, rollout_id: int, devices: Sequence[tuple[str, int]], now: float
) -> None:
    for device_id, wave in devices:
        cursor.execute(
            "INSERT INTO rollout_devices (rollout_id, device_id, wave, state, updated_at) "
            "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (rollout_id, device_id) DO NOTHING",
            (rollout_id, device_id, wave, now),
        )


def _update(
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


def _check_columns(columns: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(columns) - allowed
    if unknown:
        raise ValueError(f"not changeable here: {', '.join(sorted(unknown))}")


def _lock_rollout(cursor: Cursor, rollout_id: int, states: Collection[str]) -> Rollout:
    """The rollout, locked for this transaction if it is in one of `states`: a change that
    depends on its state cannot interleave with another (PostgreSQL locks the updated row;
    SQLite's write transactions already run one at a time)."""
    marks = ", ".join("?" for _ in states)
    cursor.execute(
        f"UPDATE rollouts SET updated_at = updated_at WHERE id = ? AND state IN ({marks})",
        (rollout_id, *states),
    )
    return _fetch_rollout(cursor, rollout_id)


def _fetch_rollout(cursor: Cursor, rollout_id: int) -> Rollout:
    row = cursor.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).one()
    if row is None:
        raise RolloutError(f"no rollout {rollout_id}")
    return _rollout(row)


def _rollout(row: dict[str, Any]) -> Rollout:
    return Rollout(**{**row, "id": int(row["id"]), "policy": json.loads(row["policy"])})
