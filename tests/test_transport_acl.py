"""The broker ACL against a real Mosquitto and the embedded broker: devices stay inside their
own topics.

With MQTT 3.1.1 Mosquitto acknowledges an unauthorised publish and drops it silently, and it
simply does not deliver what a client may not read. So each test proves non-delivery to a
subscriber that *is* allowed to read: the forbidden publishes are acknowledged first, then an
allowed "sentinel" message goes the same way; once the sentinel has arrived, anything the
broker had let through would have arrived before it.
"""

from __future__ import annotations

import dataclasses

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, AnyBroker, Collector, Connect

from edgewise.transport import (
    Chunk,
    Connection,
    Event,
    Kind,
    State,
    Status,
    Telemetry,
    device_topic,
    encode,
)
from edgewise.transport.messages import new_id
from edgewise.transport.topics import TUF, all_devices, tuf_topic


@pytest.fixture
def broker(any_broker: AnyBroker) -> AnyBroker:
    """Every test here runs against Mosquitto, then against the embedded broker."""
    return any_broker


def publish_acknowledged(connection: Connection, topic: str, payload: bytes) -> None:
    info = connection.publish(topic, payload)
    info.wait_for_publish(DELIVERY_TIMEOUT)
    assert info.is_published(), f"no PUBACK for {topic}"


def sentinel_arrived(collector: Collector, topic: str) -> list[str]:
    """Wait for the allowed message on `topic`; return every topic received until then."""
    assert collector.wait_for(lambda got: any(m.topic == topic for m in got)), (
        f"the allowed message on {topic} never arrived: {collector.topics()}"
    )
    return collector.topics()


REPORTS = {
    Kind.STATE: State(status=Status.ONLINE),
    Kind.EVENTS: Event(name="forged"),
    Kind.TELEMETRY: Telemetry(window_start=0.0, window_end=1.0),
}


def test_a_device_cannot_publish_on_another_devices_reports(connect: Connect) -> None:
    control = Collector()
    connect("control", {all_devices(kind): control for kind in REPORTS})
    intruder = connect("dev-b")
    for kind, message in REPORTS.items():
        publish_acknowledged(intruder, device_topic("dev-a", kind), encode(message))
    owner = connect("dev-a")
    sentinel = device_topic("dev-a", Kind.TELEMETRY)
    publish_acknowledged(owner, sentinel, encode(Telemetry(window_start=1.0, window_end=2.0)))
    assert sentinel_arrived(control, sentinel) == [sentinel]


def test_no_device_can_publish_commands_chunks_or_tuf_metadata(connect: Connect) -> None:
    cmd, xfer = device_topic("dev-a", Kind.CMD), device_topic("dev-a", Kind.XFER)
    victim = Collector()
    connect("dev-a", {cmd: victim, xfer: victim, f"{TUF}/#": victim})
    chunk = Chunk(new_id(), 0, 1, b"evil").encode()
    for device in ("dev-a", "dev-b"):  # the device itself and another one
        forger = connect(device, client_id=f"{device}-forger")
        publish_acknowledged(forger, cmd, b'{"forged": true}')
        publish_acknowledged(forger, xfer, chunk)
        publish_acknowledged(forger, tuf_topic("root"), b'{"forged": true}')
        forger.stop()
    control = connect("control")
    sentinel = tuf_topic("timestamp")
    publish_acknowledged(control, cmd, b'{"signed": "by control"}')
    publish_acknowledged(control, sentinel, b'{"signed": "by control"}')
    assert sentinel_arrived(victim, sentinel) == [cmd, sentinel]
    assert victim.received[0].body == b'{"signed": "by control"}'


@pytest.mark.parametrize(
    "topic_filter",
    ["edgewise/v1/devices/dev-a/cmd", "edgewise/v1/devices/dev-a/xfer", "edgewise/v1/#", "#"],
)
def test_a_device_cannot_read_another_devices_commands_or_chunks(
    connect: Connect, topic_filter: str
) -> None:
    owner, snoop = Collector(), Collector()
    a_cmd, a_xfer = device_topic("dev-a", Kind.CMD), device_topic("dev-a", Kind.XFER)
    connect("dev-a", {a_cmd: owner, a_xfer: owner})
    snooper = connect("dev-b", {topic_filter: snoop})
    control = connect("control")
    publish_acknowledged(control, a_cmd, b"secret command")
    publish_acknowledged(control, a_xfer, Chunk(new_id(), 0, 1, b"secret model").encode())
    assert owner.wait_for(lambda got: len(got) == 2), "the owner did not get its messages"
    # The snooper's own command topic is readable to it (under "#" it is the sentinel too).
    sentinel = device_topic("dev-b", Kind.CMD)
    snooper.subscribe(sentinel, snoop)
    assert snooper.wait_connected(DELIVERY_TIMEOUT)
    publish_acknowledged(control, sentinel, b"for dev-b")
    assert set(sentinel_arrived(snoop, sentinel)) == {sentinel}
    assert snooper.dropped == 0


@pytest.mark.parametrize("password", ["wrong", None])
def test_wrong_or_missing_credentials_are_refused(broker: AnyBroker, password: str | None) -> None:
    settings = dataclasses.replace(broker.settings("dev-a"), password=password)
    with Connection("dev-a", settings) as connection:
        assert not connection.wait_connected(3.0)


def test_anonymous_clients_are_refused(broker: AnyBroker) -> None:
    settings = dataclasses.replace(broker.settings("dev-a"), username=None, password=None)
    with Connection("anonymous", settings) as connection:
        assert not connection.wait_connected(3.0)
