"""The control-plane store, run against SQLite and a real PostgreSQL with the same tests."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from edgewise.exceptions import SelectorError, StoreError
from edgewise.fleet.selector import Selector
from edgewise.fleet.store import DeviceEvent, Store, TelemetryWindow


def test_a_device_keeps_what_it_reported_and_fields_not_reported_again(store: Store) -> None:
    store.upsert_device(
        "d1", online=True, last_seen=100.5, bundle=("credit", 3), slots={"a": "credit-3", "b": None}
    )
    device = store.upsert_device("d1", online=False)
    assert device.online is False
    assert device.last_seen == 100.5
    assert (device.bundle_name, device.bundle_version) == ("credit", 3)
    assert device.slots == {"a": "credit-3", "b": None}
    assert store.device("d1") == device
    assert store.device("nope") is None


def test_labels_are_set_and_removed_and_unknown_devices_are_reported(store: Store) -> None:
    store.upsert_device("d1")
    store.update_labels("d1", {"site": "berlin", "hw": "pi4"})
    device = store.update_labels("d1", {"hw": None, "ring": "canary"})
    assert device is not None and device.labels == {"site": "berlin", "ring": "canary"}
    assert store.update_labels("ghost", {"site": "x"}) is None


def test_devices_are_chosen_by_selector(store: Store) -> None:
    for device_id, labels in [
        ("b1", {"site": "berlin", "hw": "pi4"}),
        ("b2", {"site": "berlin", "hw": "pi3"}),
        ("p1", {"site": "paris", "hw": "pi4", "gpu": "yes"}),
        ("r1", {"site": "rome"}),
    ]:
        store.upsert_device(device_id)
        store.update_labels(device_id, labels)

    def ids(selector: str) -> list[str]:
        return [device.id for device in store.devices(selector)]

    assert ids("") == ["b1", "b2", "p1", "r1"]
    assert ids("site=berlin,hw!=pi3") == ["b1"]
    assert ids("site==paris") == ["p1"]
    assert ids("hw!=pi3") == ["b1", "p1", "r1"]  # a missing label is "not pi3"
    assert ids("site in (berlin, rome)") == ["b1", "b2", "r1"]
    assert ids("site notin (berlin),hw") == ["p1"]
    assert ids("gpu") == ["p1"]
    assert ids("!gpu,site=berlin") == ["b1", "b2"]


@pytest.mark.parametrize(
    "text", ["site=", "=berlin", "site in berlin", "site in (a,,b)", "a=b c=d", "site=ber lin"]
)
def test_bad_selectors_say_where_they_fail(text: str) -> None:
    with pytest.raises(SelectorError, match="selector"):
        Selector.parse(text)


def test_events_and_telemetry_are_stored_once_per_message_id(store: Store) -> None:
    event = DeviceEvent("d1", "installed", at=10.0, detail={"bundle": "credit-3"}, message_id="m1")
    assert store.record_event(event) is True
    assert store.record_event(event) is False  # a QoS 1 redelivery
    store.record_event(DeviceEvent("d1", "health", at=11.0, detail={"ok": True}))
    assert [e.kind for e in store.events("d1")] == ["health", "installed"]
    assert store.events("d1")[1] == event
    assert store.count_events() == 2
    assert store.device("d1") is not None  # an event registers its device

    window = TelemetryWindow(
        "d1",
        "credit",
        3,
        window_start=60.0,
        window_end=120.0,
        count=500,
        errors=2,
        latency={"p50": 0.1, "p99": 0.9},
        message_id="t1",
    )
    assert store.record_telemetry(window) is True
    assert store.record_telemetry(window) is False
    assert store.telemetry("credit", 3) == [window]
    assert store.telemetry("credit", 3, since=61.0) == []
    assert store.telemetry("credit", 4) == []


def test_an_alert_fires_once_per_dedup_key_until_resolved(store: Store) -> None:
    first, fired = store.fire_alert("drift", "credit-3", "drift:credit-3", {"psi": 0.3}, at=1.0)
    assert fired and first.state == "firing"
    again, fired_again = store.fire_alert("drift", "credit-3", "drift:credit-3", {"psi": 0.4}, 2.0)
    assert not fired_again
    assert (again.id, again.detail, again.fired_at, again.updated_at) == (
        first.id,
        {"psi": 0.4},
        1.0,
        2.0,
    )
    resolved = store.resolve_alert("drift:credit-3", at=3.0)
    assert resolved is not None and resolved.state == "resolved" and resolved.resolved_at == 3.0
    assert store.resolve_alert("drift:credit-3", at=4.0) is None
    refired, fired = store.fire_alert("drift", "credit-3", "drift:credit-3", {}, at=5.0)
    assert fired and refired.id != first.id
    assert [a.id for a in store.alerts()] == [refired.id, first.id]
    assert [a.id for a in store.alerts("resolved")] == [first.id]


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as cursor:
        cursor.execute("INSERT INTO devices (id) VALUES (?)", ("half",))
        raise RuntimeError("stop half way")
    assert store.device("half") is None
    with pytest.raises(StoreError), store.transaction() as cursor:
        cursor.execute("INSERT INTO devices (id) VALUES (?)", ("dup",))
        cursor.execute("INSERT INTO devices (id) VALUES (?)", ("dup",))
    assert store.device("dup") is None
    store.upsert_device("after")  # the connection is usable again


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(StoreError), store.transaction() as cursor:
        cursor.execute(
            "INSERT INTO rollout_devices (rollout_id, device_id, wave, state, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (99, "ghost", 0, "pending", 0.0),
        )


def test_threads_share_one_store(store: Store) -> None:
    def report(n: int) -> None:
        for i in range(20):
            store.record_event(DeviceEvent(f"d{n}", "beat", at=float(i), message_id=f"{n}-{i}"))

    threads = [threading.Thread(target=report, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert store.count_events() == 80


def test_reopening_keeps_the_data(store_url: str) -> None:
    with Store.open(store_url) as first:
        first.upsert_device("d1", online=True)
    with Store.open(store_url) as second:
        assert second.device("d1") is not None and second.count_devices() == {
            "online": 1,
            "offline": 0,
        }


def test_sqlite_store_uses_wal(tmp_path) -> None:
    Store.open(tmp_path / "c.db").close()
    with sqlite3.connect(tmp_path / "c.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_store_of_an_unknown_schema_version_is_refused(tmp_path) -> None:
    Store.open(tmp_path / "c.db").close()
    with sqlite3.connect(tmp_path / "c.db") as connection:
        connection.execute("UPDATE schema_info SET value = '99' WHERE name = 'version'")
    with pytest.raises(StoreError, match="schema version 99"):
        Store.open(tmp_path / "c.db")


def test_unknown_database_kinds_and_unreachable_servers_are_clear_errors(tmp_path) -> None:
    with pytest.raises(StoreError, match="unknown kind of database"):
        Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="cannot open"):
        Store.open("postgresql://nobody:secret@127.0.0.1:1/x?connect_timeout=2")


def test_a_lost_postgresql_connection_is_made_anew(postgres) -> None:
    import psycopg

    url = postgres.new_database()
    with Store.open(url) as store:
        store.upsert_device("d1")
        with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (url.rsplit("/", 1)[1],),
            )
        with pytest.raises(StoreError):
            store.device("d1")  # the request in flight when the server cut the connection
        assert store.device("d1") is not None
