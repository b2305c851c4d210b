"""The device registry: states in and out of order, labels, events once per message id."""

from __future__ import annotations

from edgewise.fleet.registry import Registry
from edgewise.fleet.store import Store
from edgewise.transport.messages import BundleRef, Event, Slot, SlotStatus, State, Status

CREDIT_3 = BundleRef("credit", 3, "a" * 64, 1000)
CREDIT_4 = BundleRef("credit", 4, "b" * 64, 1000)


def online(ts: float, active: BundleRef | None = CREDIT_3, **labels: str) -> State:
    slots = {"a": Slot(SlotStatus.ACTIVE, active)} if active else {}
    return State(ts=ts, status=Status.ONLINE, active=active, slots=slots, labels=labels)


def offline(ts: float) -> State:
    return State(ts=ts, status=Status.OFFLINE, reason="connection lost")


def test_a_state_sets_what_the_device_runs_and_an_older_one_does_not_overwrite_it(
    store: Store,
) -> None:
    registry = Registry(store)
    registry.record([("d1", online(200.0, CREDIT_4, site="berlin"))])
    registry.record([("d1", online(100.0, CREDIT_3, site="paris"))])  # redelivered, older
    device = store.device("d1")
    assert device is not None
    assert device.online and device.last_seen == 200.0
    assert (device.bundle_name, device.bundle_version) == ("credit", 4)
    assert device.labels == {"site": "berlin"}
    assert device.slots["a"]["bundle"]["version"] == 4


def test_a_last_will_older_than_the_online_state_still_marks_the_device_offline(
    store: Store,
) -> None:
    registry = Registry(store)
    will = offline(50.0)  # written when the connection began
    registry.record([("d1", online(100.0))])
    registry.record([("d1", will)])
    device = store.device("d1")
    assert device is not None and not device.online
    assert (device.bundle_name, device.last_seen) == ("credit", 100.0)  # the will keeps them
    # The device comes back within the same process (same will) and dies again.
    registry.record([("d1", online(150.0)), ("d1", will)])
    device = store.device("d1")
    assert device is not None and not device.online and device.last_seen == 150.0


def test_a_device_that_reports_no_bundle_has_none(store: Store) -> None:
    registry = Registry(store)
    registry.record([("d1", online(100.0, CREDIT_3))])
    registry.record([("d1", online(101.0, None))])
    device = store.device("d1")
    assert device is not None and device.bundle_name is None and device.bundle_version is None
    assert device.slots == {}


def test_operator_labels_win_over_the_devices_own_and_survive_its_next_state(
    store: Store,
) -> None:
    registry = Registry(store)
    registry.record([("d1", online(100.0, site="berlin", hw="pi4"))])
    store.update_labels("d1", {"site": "paris", "ring": "canary"})
    registry.record([("d1", online(101.0, site="berlin", hw="pi5"))])
    device = store.device("d1")
    assert device is not None
    assert device.labels == {"site": "paris", "hw": "pi5", "ring": "canary"}
    assert [d.id for d in store.devices("site=paris,hw=pi5")] == ["d1"]
    # Removing the operator's label brings back what the device says.
    device = store.update_labels("d1", {"site": None})
    assert device is not None and device.labels["site"] == "berlin"


def test_events_are_stored_once_per_message_and_scoped_to_their_device(store: Store) -> None:
    registry = Registry(store)
    done = Event(ts=120.0, name="install.done", detail={"bundle": "credit", "version": 4})
    failed = Event(ts=121.0, name="install.failed", detail={"reason": "health"})
    assert registry.record([("d1", done), ("d1", failed), ("d1", done)]) == 2
    assert registry.record([("d1", done)]) == 0  # a redelivery
    # Another device reusing the id is a different message: it cannot hide d1's events.
    assert registry.record([("d2", done)]) == 1
    events = store.events("d1")
    assert [(e.kind, e.at, e.detail) for e in events] == [
        ("install.failed", 121.0, {"reason": "health"}),
        ("install.done", 120.0, {"bundle": "credit", "version": 4}),
    ]
    device = store.device("d1")
    assert device is not None and device.last_seen == 121.0
    assert store.count_events() == 3


def test_a_batch_is_one_transaction(store: Store) -> None:
    registry = Registry(store)
    batch: list[tuple[str, State | Event]] = [
        (f"d{i}", online(100.0 + i, site="s")) for i in range(50)
    ]
    batch += [(f"d{i}", Event(ts=200.0, name="slots.repaired")) for i in range(50)]
    assert registry.record(batch) == 50
    assert store.count_devices() == {"online": 50, "offline": 0}
