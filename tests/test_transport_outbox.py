"""The durable outbox and the receiver's dedup, against a real Mosquitto that goes away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Collector, Connect

from edgewise.exceptions import MessageError, OutboxFullError
from edgewise.transport import (
    Event,
    Inbound,
    Kind,
    Message,
    Outbox,
    OutboxPublisher,
    SeenIds,
    Telemetry,
    device_topic,
)
from edgewise.transport.telemetry_frame import RawTelemetry
from edgewise.transport.topics import all_devices

TELEMETRY_A = device_topic("dev-a", Kind.TELEMETRY)
EVENTS_A = device_topic("dev-a", Kind.EVENTS)


class DedupReceiver(Collector):
    """The collector's side: counts each (device, id) once, however often it arrives."""

    def __init__(self, seen: SeenIds) -> None:
        super().__init__()
        self.seen = seen
        self.unique: list[str] = []

    def __call__(self, inbound: Inbound) -> None:
        body = inbound.body
        if isinstance(body, RawTelemetry):  # frames are decoded where the collector batches
            body = body.decode(inbound.topic)
        assert isinstance(body, Message) and inbound.device is not None
        if self.seen.first_time(inbound.device, body.id):
            self.unique.append(body.id)
        super().__call__(inbound)


@pytest.fixture
def receiver(tmp_path: Path, connect: Connect) -> Iterator[DedupReceiver]:
    seen = SeenIds(tmp_path / "seen.db")
    receiver = DedupReceiver(seen)
    connect("control", {all_devices(Kind.TELEMETRY): receiver, all_devices(Kind.EVENTS): receiver})
    yield receiver
    seen.close()


def reports(count: int) -> list[tuple[str, Message]]:
    """Telemetry with an event every tenth message, in the order a device would send them."""
    return [
        (EVENTS_A, Event(name="install.done", detail={"n": n}))
        if n % 10 == 0
        else (TELEMETRY_A, Telemetry(window_start=n, window_end=n + 1.0, metrics={"n": n}))
        for n in range(count)
    ]


def test_nothing_is_lost_while_the_broker_is_down(
    tmp_path: Path, broker: Broker, connect: Connect, receiver: DedupReceiver
) -> None:
    outbox = Outbox(tmp_path / "outbox.db")
    publisher = OutboxPublisher(outbox, connect("dev-a")).start()
    try:
        broker.stop()
        sent = reports(300)
        for topic, message in sent:
            publisher.send(topic, message)
        assert len(outbox) == 300
        broker.start()
        assert receiver.wait_for(lambda _: len(receiver.unique) == 300, DELIVERY_TIMEOUT * 2)
        assert publisher.wait_empty(DELIVERY_TIMEOUT)
    finally:
        publisher.stop()
        outbox.close()
    # Exactly once each; the order may differ where paho re-sent what was in flight.
    assert sorted(receiver.unique) == sorted(message.id for _, message in sent)


def test_the_outbox_survives_a_restart_of_the_device_process(
    tmp_path: Path, connect: Connect, receiver: DedupReceiver
) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    sent = reports(50)
    for topic, message in sent:
        first.put(topic, message)
    first.close()  # the process ends before it ever connected

    reopened = Outbox(path)
    assert len(reopened) == 50
    publisher = OutboxPublisher(reopened, connect("dev-a")).start()
    try:
        assert receiver.wait_for(lambda _: len(receiver.unique) == 50)
        assert publisher.wait_empty(DELIVERY_TIMEOUT)
    finally:
        publisher.stop()
        reopened.close()
    assert receiver.unique == [message.id for _, message in sent]


def test_a_resent_message_counts_once(
    tmp_path: Path, connect: Connect, receiver: DedupReceiver
) -> None:
    """A message published before a crash but not yet deleted is sent again after the restart;
    the receiver's ids make the second copy harmless."""
    device = connect("dev-a")
    outbox = Outbox(tmp_path / "outbox.db")
    message = Telemetry(window_start=0.0, window_end=1.0)
    for _ in range(2):  # the same message, as the first and the restarted process send it
        outbox.put(TELEMETRY_A, message)
    publisher = OutboxPublisher(outbox, device).start()
    try:
        assert receiver.wait_for(lambda got: len(got) == 2)
    finally:
        publisher.stop()
        outbox.close()
    assert receiver.unique == [message.id]


def test_when_full_the_oldest_telemetry_goes_and_events_never(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", max_messages=4)
    event = Event(name="rollback")
    telemetry = [Telemetry(window_start=n, window_end=n + 1.0) for n in range(3)]
    outbox.put(EVENTS_A, event)
    for message in telemetry:
        outbox.put(TELEMETRY_A, message)
    outbox.put(EVENTS_A, Event(name="rollback.done"))  # full: telemetry 0 makes room
    assert len(outbox) == 4
    assert outbox.dropped == 1
    kept = [payload for _, _, payload in outbox.after(0, 10)]
    assert not any(telemetry[0].id.encode() in payload for payload in kept)
    assert any(event.id.encode() in payload for payload in kept)
    outbox.put(EVENTS_A, Event(name="a"))
    outbox.put(EVENTS_A, Event(name="b"))  # the last telemetry goes
    with pytest.raises(OutboxFullError, match="none of which may be dropped"):
        outbox.put(EVENTS_A, Event(name="c"))
    assert outbox.dropped == 3
    with pytest.raises(MessageError, match="reports only"):
        outbox.put(device_topic("dev-a", Kind.CMD), Event(name="a"))
    outbox.close()


def test_seen_ids_are_per_device_persistent_and_expire(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path / "seen.db", retention=100.0)
    assert seen.first_time("dev-a", "m1", now=0.0)
    assert not seen.first_time("dev-a", "m1", now=1.0)
    assert seen.first_time("dev-b", "m1", now=1.0)  # another device may use the same id
    seen.close()
    reopened = SeenIds(tmp_path / "seen.db", retention=100.0)
    assert not reopened.first_time("dev-a", "m1", now=2.0)
    for n in range(1000):  # enough inserts to trigger a prune, long after m1's retention
        reopened.first_time("dev-c", f"x{n}", now=500.0)
    assert reopened.first_time("dev-a", "m1", now=500.0)
    reopened.close()
