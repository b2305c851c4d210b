"""The audit log: every operator action, append-only and hash-chained in the store.

Each entry's hash is SHA-256 over the canonical JSON of the entry together with the previous
entry's hash, so editing, deleting, reordering or inserting an entry breaks the chain at that
entry, and `AuditLog.verify` names it. An entry may also carry the operator's signature over
`operator_statement(action, payload)`; given the trust root, `verify` checks it against the
operator keys the root lists, so a forged entry needs an operator key, not only database access.
Cutting entries off the end leaves a valid shorter chain: keep `Verification.head` elsewhere
(a ticket, a log shipper) to detect that too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from securesystemslib.signer import Signature
from tuf.api.metadata import Root

from ..exceptions import AuditError, TrustError
from ..trust.operators import verify_operator_signature
from .store import AuditRow, AuditWrite, Store

GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def operator_statement(action: str, payload: dict[str, Any]) -> bytes:
    """The bytes an operator signs to vouch for an action."""
    return canonical_json({"action": action, "payload": payload})


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    payload: dict[str, Any]
    signature: dict[str, Any] | None
    prev_hash: str
    hash: str


def entry_hash(
    prev_hash: str,
    seq: int,
    at: str,
    actor: str,
    action: str,
    payload: dict[str, Any],
    signature: dict[str, Any] | None,
) -> str:
    content = {
        "prev_hash": prev_hash,
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "payload": payload,
        "signature": signature,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()


@dataclass(frozen=True)
class Verification:
    """What `AuditLog.verify` found: `broken_at` is the first bad entry's number, or None."""

    entries: int
    signed: int
    head: str
    broken_at: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class AuditLog:
    def __init__(self, store: Store) -> None:
        self._store = store

    def append(
        self,
        actor: str,
        action: str,
        payload: dict[str, Any],
        signature: Signature | None = None,
    ) -> AuditEntry:
        """Append an entry on its own; `signature` is the operator's over `operator_statement`."""
        return _entry(self._store.append_audit(self.prepare(actor, action, payload, signature)))

    @staticmethod
    def prepare(
        actor: str,
        action: str,
        payload: dict[str, Any],
        signature: Signature | None = None,
    ) -> AuditWrite:
        """The entry for a store method to append in the transaction of the change itself."""
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        signed = None if signature is None else signature.to_dict()
        payload = json.loads(canonical_json(payload))  # what is stored is what gets hashed

        def next_row(last: AuditRow | None) -> AuditRow:
            seq = 1 if last is None else last.seq + 1
            prev_hash = GENESIS_HASH if last is None else last.hash
            return AuditRow(
                seq=seq,
                at=at,
                actor=actor,
                action=action,
                payload=canonical_json(payload).decode(),
                signature=None if signed is None else canonical_json(signed).decode(),
                prev_hash=prev_hash,
                hash=entry_hash(prev_hash, seq, at, actor, action, payload, signed),
            )

        return next_row

    def entries(self, after: int = 0, limit: int | None = None) -> list[AuditEntry]:
        return [_entry(row) for row in self._store.audit_rows(after, limit)]

    def verify(self, root: Root | None = None) -> Verification:
        """Walk the chain from the first entry; with `root`, check operator signatures too."""
        prev_hash, signed, count = GENESIS_HASH, 0, 0
        for expected_seq, row in enumerate(self._store.audit_rows(), start=1):
            problem = _chain_problem(row, expected_seq, prev_hash)
            if problem is None and root is not None and row.signature is not None:
                problem = _signature_problem(row, root)
            if problem is not None:
                return Verification(count, signed, prev_hash, expected_seq, problem)
            prev_hash, count = row.hash, count + 1
            signed += row.signature is not None
        return Verification(count, signed, prev_hash)


def _chain_problem(row: AuditRow, expected_seq: int, prev_hash: str) -> str | None:
    if row.seq != expected_seq:
        return (
            f"entry {expected_seq} is missing (the next stored is {row.seq}): deleted or renumbered"
        )
    if row.prev_hash != prev_hash:
        return f"entry {expected_seq} does not follow entry {expected_seq - 1}: inserted or moved"
    try:
        entry = _entry(row)
    except AuditError as exc:
        return str(exc)
    recomputed = entry_hash(
        row.prev_hash, row.seq, row.at, row.actor, row.action, entry.payload, entry.signature
    )
    if recomputed != row.hash:
        return f"entry {expected_seq} was changed after it was written: its hash does not match"
    return None


def _signature_problem(row: AuditRow, root: Root) -> str | None:
    entry = _entry(row)
    assert entry.signature is not None
    try:
        signature = Signature.from_dict(dict(entry.signature))
        verify_operator_signature(root, operator_statement(entry.action, entry.payload), signature)
    except (TrustError, KeyError, TypeError, ValueError) as exc:
        return f"entry {row.seq}: operator signature rejected ({exc})"
    return None


def _entry(row: AuditRow) -> AuditEntry:
    try:
        payload = json.loads(row.payload)
        signature = None if row.signature is None else json.loads(row.signature)
    except json.JSONDecodeError as exc:
        raise AuditError(f"entry {row.seq}: stored payload or signature is not JSON") from exc
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        payload=payload,
        signature=signature,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
