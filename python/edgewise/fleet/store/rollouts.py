"""Rollouts and their waves (rollout_devices.py: the devices they reach)."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...exceptions import RolloutError
from .audit_log import AuditWrite, append_audit
from .database import Cursor, Database
from .rollout_devices import IN_FLIGHT, check_columns, insert_devices, lock_rollout, update_row


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
class NewRollout:
    bundle: tuple[str, int]
    selector: str
    policy: Mapping[str, Any]
    wave_sizes: Sequence[str]  # as the operator wrote them, one per wave
    created_by: str


# Columns an operator action or the engine may change on a rollout.
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
            insert_devices(cursor, rollout_id, assign(rollout_id), now)
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
        check_columns(changes, _ROLLOUT_COLUMNS)
        with self.transaction() as cursor:
            current = _lock_rollout(cursor, rollout_id, allowed_from)
            if current.state not in allowed_from:
                raise RolloutError(
                    f"rollout {rollout_id} is {current.state}; this needs it "
                    f"{' or '.join(sorted(allowed_from))}"
                )
            update_row(cursor, "rollouts", changes, now, "id = ?", (rollout_id,))
            if changes.get("state") in ("halted", "aborted"):
                update_row(
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
            update_row(
                cursor,
                "rollout_waves",
                {"state": "succeeded", "reason": None, "finished_at": now},
                None,
                "rollout_id = ? AND wave = ?",
                (rollout_id, wave),
            )
            started = update_row(
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
            update_row(cursor, "rollouts", changes, now, "id = ?", (rollout_id,))
            return _fetch_rollout(cursor, rollout_id)

    def set_wave_reason(self, rollout_id: int, wave: int, reason: str | None) -> None:
        with self.transaction() as cursor:
            update_row(
                cursor,
                "rollout_waves",
                {"reason": reason},
                None,
                "rollout_id = ? AND wave = ?",
                (rollout_id, wave),
            )


def _lock_rollout(cursor: Cursor, rollout_id: int, states: Collection[str]) -> Rollout:
    """The rollout, locked for this transaction if it is in one of `states`."""
    lock_rollout(cursor, rollout_id, states)
    return _fetch_rollout(cursor, rollout_id)


def _fetch_rollout(cursor: Cursor, rollout_id: int) -> Rollout:
    row = cursor.execute("SELECT * FROM rollouts WHERE id = ?", (rollout_id,)).one()
    if row is None:
        raise RolloutError(f"no rollout {rollout_id}")
    return _rollout(row)


def _rollout(row: dict[str, Any]) -> Rollout:
    return Rollout(**{**row, "id": int(row["id"]), "policy": json.loads(row["policy"])})
