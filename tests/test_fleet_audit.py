"""The audit log's hash chain and operator signatures, tampered with directly in the database
(SQLite and a real PostgreSQL), as someone with database access but no operator key would."""

from __future__ import annotations

import json
import threading

import pytest
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root

from edgewise.fleet.audit import AuditLog, entry_hash, operator_statement
from edgewise.fleet.store import AuditRow, Store
from edgewise.trust.operators import set_operator_keys


@pytest.fixture(scope="module")
def operator() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture(scope="module")
def root(operator: CryptoSigner) -> Root:
    root = Root()
    set_operator_keys(root, [operator.public_key])
    return root


@pytest.fixture
def log(store: Store, operator: CryptoSigner) -> AuditLog:
    audit = AuditLog(store)
    for n in range(1, 6):
        payload = {"device": f"d{n}", "labels": {"site": "berlin"}}
        signature = operator.sign(operator_statement("label", payload))
        audit.append("alice", "label", payload, signature)
    return audit


def execute(store: Store, *statements: tuple[str, tuple]) -> None:
    with store.transaction() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)


def test_an_untouched_log_verifies_with_its_signatures(log: AuditLog, root: Root) -> None:
    result = log.verify(root)
    assert (result.ok, result.entries, result.signed) == (True, 5, 5)
    assert result.head == log.entries()[-1].hash
    assert [entry.seq for entry in log.entries(after=3)] == [4, 5]
    assert log.entries(limit=1)[0].payload == {"device": "d1", "labels": {"site": "berlin"}}


def test_an_empty_log_verifies(store: Store) -> None:
    result = AuditLog(store).verify()
    assert (result.ok, result.entries) == (True, 0)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", '{"device":"d3","labels":{"site":"paris"}}'),
        ("actor", "mallory"),
        ("action", "unlabel"),
        ("at", "2020-01-01T00:00:00.000000+00:00"),
    ],
)
def test_an_edited_entry_is_found(log: AuditLog, store: Store, column: str, value: str) -> None:
    execute(store, (f"UPDATE audit_log SET {column} = ? WHERE seq = 3", (value,)))
    result = log.verify()
    assert (result.ok, result.broken_at, result.entries) == (False, 3, 2)
    assert "changed after it was written" in (result.reason or "")


def test_a_deleted_entry_is_found(log: AuditLog, store: Store) -> None:
    execute(store, ("DELETE FROM audit_log WHERE seq = ?", (3,)))
    result = log.verify()
    assert (result.broken_at, result.reason) == (
        3,
        "entry 3 is missing (the next stored is 4): deleted or renumbered",
    )


def test_reordered_entries_are_found(log: AuditLog, store: Store) -> None:
    # Swap entries 2 and 3 wholesale, keeping the seq column in order.
    execute(
        store,
        ("UPDATE audit_log SET seq = 0 WHERE seq = 2", ()),
        ("UPDATE audit_log SET seq = 2 WHERE seq = 3", ()),
        ("UPDATE audit_log SET seq = 3 WHERE seq = 0", ()),
    )
    result = log.verify()
    assert result.broken_at == 2 and "inserted or moved" in (result.reason or "")


def test_an_inserted_entry_is_found(log: AuditLog, store: Store) -> None:
    # A well-formed entry slipped in after entry 2, the later ones renumbered to make room.
    second = log.entries()[1]
    forged = {"device": "d9", "labels": {"site": "evil"}}
    at = "2026-01-01T00:00:00.000000+00:00"
    digest = entry_hash(second.hash, 3, at, "alice", "label", forged, None)
    execute(
        store,
        ("UPDATE audit_log SET seq = -seq WHERE seq >= 3", ()),
        ("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0", ()),
        (
            "INSERT INTO audit_log (seq, at, actor, action, payload, signature, prev_hash, hash) "
            "VALUES (3, ?, 'alice', 'label', ?, NULL, ?, ?)",
            (at, json.dumps(forged), second.hash, digest),
        ),
    )
    result = log.verify()
    assert (result.broken_at, result.entries) == (4, 3)


def test_a_rewritten_chain_still_fails_on_the_operator_signature(
    log: AuditLog, store: Store, root: Root
) -> None:
    # Whoever edits entry 3 and recomputes every hash from there keeps a valid chain, but cannot
    # make entry 3's signature match the new payload.
    entries = log.entries()
    prev = entries[1].hash
    for entry in entries[2:]:
        payload = (
            {**entry.payload, "labels": {"site": "paris"}} if entry.seq == 3 else entry.payload
        )
        digest = entry_hash(
            prev, entry.seq, entry.at, entry.actor, entry.action, payload, entry.signature
        )
        execute(
            store,
            (
                "UPDATE audit_log SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (json.dumps(payload), prev, digest, entry.seq),
            ),
        )
        prev = digest
    assert log.verify().ok  # the chain alone cannot tell
    result = log.verify(root)
    assert result.broken_at == 3 and "does not match the payload" in (result.reason or "")


def test_a_signature_by_another_key_is_rejected(store: Store, root: Root) -> None:
    stranger = CryptoSigner.generate_ed25519()
    audit = AuditLog(store)
    audit.append("bob", "label", {"device": "d1"})
    audit.append(
        "bob",
        "label",
        {"device": "d2"},
        stranger.sign(operator_statement("label", {"device": "d2"})),
    )
    result = audit.verify(root)
    assert (result.broken_at, result.signed) == (2, 0)
    assert "not an operator key" in (result.reason or "")
    assert audit.verify().ok  # without the root only the chain is checked


def test_a_change_and_its_audit_entry_are_kept_together(store: Store) -> None:
    store.upsert_device("d1")

    def refuse(last: object) -> AuditRow:
        raise RuntimeError("the audit entry cannot be written")

    with pytest.raises(RuntimeError):
        store.update_labels("d1", {"site": "paris"}, refuse)
    device = store.device("d1")
    assert device is not None and device.labels == {}
    entry = AuditLog.prepare("alice", "label", {"device": "d1", "set": {"site": "paris"}})
    store.update_labels("d1", {"site": "paris"}, entry)
    assert [(e.actor, e.payload["set"]) for e in AuditLog(store).entries()] == [
        ("alice", {"site": "paris"})
    ]


def test_writers_on_separate_connections_keep_one_chain(store_url: str) -> None:
    # Two stores stand for two control-plane processes sharing one database.
    stores = [Store.open(store_url), Store.open(store_url)]
    failures: list[BaseException] = []

    def write(store: Store, actor: str) -> None:
        try:
            for n in range(30):
                AuditLog(store).append(actor, "label", {"n": n})
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, f"writer-{i}"))
        for i, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for store in stores:
        store.close()
    assert failures == []
    with Store.open(store_url) as store:
        result = AuditLog(store).verify()
    assert (result.ok, result.entries) == (True, 60)
