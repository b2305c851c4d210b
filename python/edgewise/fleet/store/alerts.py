"""Alerts: raised once per deduplication key, then resolved."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .database import Database


@dataclass(frozen=True)
class Alert:
    id: int
    rule: str
    subject: str
    dedup_key: str
    state: str
    detail: dict[str, Any]
    fired_at: float
    updated_at: float
    resolved_at: float | None


class AlertQueries(Database):
    """Queries on the alerts table."""

    def fire_alert(
        self, rule: str, subject: str, dedup_key: str, detail: Mapping[str, Any], at: float
    ) -> tuple[Alert, bool]:
        """Raise an alert unless one with this dedup key is firing; (the alert, newly fired)."""
        with self.transaction() as cursor:
            inserted = cursor.execute(
                "INSERT INTO alerts (rule, subject, dedup_key, state, detail, fired_at, "
                "updated_at) VALUES (?, ?, ?, 'firing', ?, ?, ?) "
                "ON CONFLICT (dedup_key) WHERE state = 'firing' DO NOTHING",
                (rule, subject, dedup_key, json.dumps(dict(detail)), at, at),
            ).rowcount
            if not inserted:
                cursor.execute(
                    "UPDATE alerts SET detail = ?, updated_at = ? "
                    "WHERE dedup_key = ? AND state = 'firing'",
                    (json.dumps(dict(detail)), at, dedup_key),
                )
            row = cursor.execute(
                "SELECT * FROM alerts WHERE dedup_key = ? AND state = 'firing'", (dedup_key,)
            ).one()
        assert row is not None  # inserted or updated above, in the same transaction
        return _alert(row), bool(inserted)

    def resolve_alert(self, dedup_key: str, at: float) -> Alert | None:
        """Resolve the firing alert of this dedup key; None if none was firing."""
        with self.transaction() as cursor:
            row = cursor.execute(
                "SELECT id FROM alerts WHERE dedup_key = ? AND state = 'firing'", (dedup_key,)
            ).one()
            if row is None:
                return None
            cursor.execute(
                "UPDATE alerts SET state = 'resolved', resolved_at = ?, updated_at = ? "
                "WHERE id = ?",
                (at, at, row["id"]),
            )
            resolved = cursor.execute("SELECT * FROM alerts WHERE id = ?", (row["id"],)).one()
        return None if resolved is None else _alert(resolved)

    def alerts(self, state: str | None = None) -> list[Alert]:
        """Alerts, newest first; only those in `state` ('firing' or 'resolved') when given."""
        query = "SELECT * FROM alerts"
        params: tuple[Any, ...] = ()
        if state is not None:
            query, params = query + " WHERE state = ?", (state,)
        with self.transaction() as cursor:
            rows = cursor.execute(query + " ORDER BY fired_at DESC, id DESC", params).all()
        return [_alert(row) for row in rows]


def _alert(row: dict[str, Any]) -> Alert:
    return Alert(**{**row, "id": int(row["id"]), "detail": json.loads(row["detail"])})
