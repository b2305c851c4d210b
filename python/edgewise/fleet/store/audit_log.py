"""The rows of the audit log; fleet/audit.py computes and checks their hash chain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .database import Cursor, Database


@dataclass(frozen=True)
class AuditRow:
    """One stored audit entry; audit.py gives it meaning (hashes, signatures)."""

    seq: int
    at: str
    actor: str
    action: str
    payload: str
    signature: str | None
    prev_hash: str
    hash: str


# Builds the next audit row from the last one (None for the first): audit.py hashes, the store
# appends it inside the transaction of the change it records, so neither is kept without the other.
AuditWrite = Callable[[AuditRow | None], AuditRow]


class AuditQueries(Database):
    """Queries on the audit_log table."""

    def append_audit(self, audit: AuditWrite) -> AuditRow:
        """Append the audit row `audit` builds, on its own (for actions that change nothing
        in the store)."""
        with self.transaction() as cursor:
            return append_audit(cursor, audit)

    def audit_rows(self, after: int = 0, limit: int | None = None) -> list[AuditRow]:
        """Audit rows with seq greater than `after`, in chain order."""
        query = "SELECT * FROM audit_log WHERE seq > ? ORDER BY seq"
        params: tuple[Any, ...] = (after,)
        if limit is not None:
            query, params = query + " LIMIT ?", (after, limit)
        with self.transaction() as cursor:
            return [AuditRow(**row) for row in cursor.execute(query, params).all()]


def append_audit(cursor: Cursor, audit: AuditWrite) -> AuditRow:
    if cursor.dialect.lock_audit is not None:
        cursor.execute(cursor.dialect.lock_audit)
    last = cursor.execute("SELECT * FROM audit_log ORDER BY seq DESC LIMIT 1").one()
    row = audit(None if last is None else AuditRow(**last))
    cursor.execute(
        "INSERT INTO audit_log (seq, at, actor, action, payload, signature, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            row.seq,
            row.at,
            row.actor,
            row.action,
            row.payload,
            row.signature,
            row.prev_hash,
            row.hash,
        ),
    )
    return row
