"""API tokens, kept only as hashes (fleet/auth.py makes and checks them)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ...exceptions import StoreError
from .audit_log import AuditWrite, append_audit
from .database import Database


@dataclass(frozen=True)
class TokenRow:
    name: str
    role: str
    token_hash: str
    created_at: float


class TokenQueries(Database):
    """Queries on the api_tokens table."""

    def add_token(
        self, name: str, role: str, token_hash: str, audit: AuditWrite | None = None
    ) -> TokenRow:
        row = TokenRow(name, role, token_hash, time.time())
        try:
            with self.transaction() as cursor:
                cursor.execute(
                    "INSERT INTO api_tokens (name, role, token_hash, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (row.name, row.role, row.token_hash, row.created_at),
                )
                if audit is not None:
                    append_audit(cursor, audit)
        except StoreError as exc:
            if isinstance(exc.__cause__, self._dialect.integrity_errors):
                raise StoreError(f"a token named {name!r} already exists") from exc
            raise
        return row

    def token_by_hash(self, token_hash: str) -> TokenRow | None:
        with self.transaction() as cursor:
            row = cursor.execute(
                "SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,)
            ).one()
        return None if row is None else TokenRow(**row)

    def token_named(self, name: str) -> TokenRow | None:
        with self.transaction() as cursor:
            row = cursor.execute("SELECT * FROM api_tokens WHERE name = ?", (name,)).one()
        return None if row is None else TokenRow(**row)
