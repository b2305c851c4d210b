"""Broker behaviours the fleet protocol relies on, against Mosquitto and the embedded broker
alike: retained messages only for clients allowed to read them and kept across a restart,
queued QoS 1 delivery to a persistent session, a command resent after a crash before its
PUBACK, the last will on a silent (half-open) connection, no forged wills, 100 KB payloads.
Then what only the embedded broker has to prove: its payload cap."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import paho.mqtt.client as paho
import pytest
from mqtt_broker import DELIVERY_TIMEOUT, AnyBroker, Collector, Connect, Credentials
from paho.mqtt.enums import CallbackAPIVersion

from edgewise.broker import EmbeddedBroker
from edgewise.transport import Kind, State, Status, device_topic, encode
from edgewise.transport.topics import ALERTS, all_devices, tuf_topic

STATE_A = device_topic("dev-a", Kind.STATE)
CMD_A = device_topic("dev-a", Kind.CMD)
CMD_B = device_topic("dev-b", Kind.CMD)
TIMESTAMP = tuf_topic("timestamp")


@pytest.fixture
def broker(any_broker: AnyBroker) -> AnyBroker:
    """Every test here runs against Mosquitto, then against the embedded broker."""
    return any_broker


class RawClient:
    """A bare paho client that records *every* message it is sent, whether it subscribed to
    its topic or not (a fleet `Connection` drops what matches none of its subscriptions)."""

    def __init__(
        self, port: int, user: str, password: str, client_id: str, manual_ack: bool = False
    ) -> None:
        self.port = port
        self.received: list[tuple[str, bytes]] = []
        self.retain_flags: list[bool] = []
        self._condition = threading.Condition()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        self.client.username_pw_set(user, password)
        self.client.manual_ack_set(manual_ack)  # True: receive, never acknowledge
        self.client.on_message = self._on_message
        self.client.on_connect = lambda *_: self._connected.set()
        self.client.on_subscribe = lambda *_: self._subscribed.set()

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage):
        with self._condition:
            self.received.append((message.topic, bytes(message.payload)))
            self.retain_flags.append(bool(message.retain))
            self._condition.notify_all()

    def start(self, keepalive: int = 10, wait: bool = True) -> RawClient:
        self.client.connect("127.0.0.1", self.port, keepalive)
        self.client.loop_start()
        assert not wait or self._connected.wait(DELIVERY_TIMEOUT), "no CONNACK"
        return self

    def subscribe(self, topic_filter: str) -> None:
        self._subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(DELIVERY_TIMEOUT), f"no SUBACK for {topic_filter}"

    def topics_until(self, topic: str) -> list[str]:
        """Wait for a message on `topic`; every topic received until then."""
        with self._condition:
            arrived = self._condition.wait_for(
                lambda: any(t == topic for t, _ in self.received), DELIVERY_TIMEOUT
            )
            topics = [t for t, _ in self.received]
        assert arrived, f"{topic} never arrived; got {topics}"
        return topics

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        line = self.client.socket()
        if line is not None:  # the network thread stopped before it closed the socket
            line.close()


Raw = Callable[..., RawClient]


@pytest.fixture
def raw(broker: AnyBroker) -> Iterator[Raw]:
    """Make a `RawClient` as `user` (client id: `client_id`, default the user)."""
    made: list[RawClient] = []

    def make(user: str, client_id: str | None = None, manual_ack: bool = False) -> RawClient:
        password = broker.credentials.passwords[user]
        made.append(RawClient(broker.port, user, password, client_id or user, manual_ack))
        return made[-1]

    yield make
    for client in made:
        client.stop()


def publish(connect: Connect, user: str, topic: str, payload: bytes, retain: bool = False):
    publisher = connect(user, client_id=f"{user}-publisher-{topic}")
    info = publisher.publish(topic, payload, retain=retain)
    info.wait_for_publish(DELIVERY_TIMEOUT)
    assert info.is_published(), f"no PUBACK for {topic}"
    publisher.stop()


def test_retained_messages_reach_only_clients_allowed_to_read_them(
    connect: Connect, raw: Raw
) -> None:
    publish(connect, "dev-a", STATE_A, encode(State(status=Status.ONLINE)), retain=True)
    publish(connect, "control", TIMESTAMP, b'{"signed": "timestamp"}', retain=True)
    snooper = raw("dev-b").start()
    snooper.subscribe("#")
    snooper.topics_until(TIMESTAMP)  # retained, and readable by every device
    publish(connect, "control", CMD_B, b"sentinel")
    assert set(snooper.topics_until(CMD_B)) == {TIMESTAMP, CMD_B}


def test_a_resumed_session_gets_no_retained_message_of_other_clients_subscriptions(
    connect: Connect, raw: Raw
) -> None:
    """The control user subscribes to every device's state; a device that resumes its session
    must not receive those (amqtt 0.12.1 sent them, unchecked, until edgewise overrode it)."""
    connect("control", {all_devices(Kind.STATE): Collector()})
    publish(connect, "dev-a", STATE_A, encode(State(status=Status.ONLINE)), retain=True)
    device = raw("dev-b")
    device.start().subscribe(CMD_B)
    device.stop()
    resumed = raw("dev-b").start()
    publish(connect, "control", CMD_B, b"sentinel")
    assert resumed.topics_until(CMD_B) == [CMD_B]


def test_retained_metadata_and_states_survive_a_broker_restart_and_can_be_cleared(
    broker: AnyBroker, connect: Connect, raw: Raw
) -> None:
    publish(connect, "control", TIMESTAMP, b'{"signed": "timestamp"}', retain=True)
    publish(connect, "dev-a", STATE_A, encode(State(status=Status.ONLINE)), retain=True)
    publish(connect, "control", tuf_topic("snapshot"), b"old", retain=True)
    publish(connect, "control", tuf_topic("snapshot"), b"", retain=True)  # cleared
    broker.stop()
    broker.start()
    reader = raw("control", "control-after-restart").start()
    reader.subscribe("edgewise/v1/#")
    sentinel = f"{ALERTS}/sentinel"
    publish(connect, "control", sentinel, b"not retained")
    assert sorted(reader.topics_until(sentinel)) == sorted([TIMESTAMP, STATE_A, sentinel])


def test_qos1_messages_sent_while_a_device_is_away_arrive_in_order_when_it_returns(
    connect: Connect, raw: Raw
) -> None:
    first = Collector()
    device = connect("dev-a", {CMD_A: first})
    device.stop()  # a clean disconnect; the persistent session stays on the broker
    control = connect("control")
    for index in range(20):
        control.publish(CMD_A, f"command {index}".encode()).wait_for_publish(DELIVERY_TIMEOUT)
    # A PUBACK says the broker has a message, not that it has queued it for the absent device
    # yet. Brokers relay in order, so once a later message came back to the control user, all
    # 20 are queued (docs/operations.md: with amqtt, a message still in its hands when the
    # device returns can overtake the queue).
    relayed = raw("control", "control-relayed").start()
    relayed.subscribe(f"{ALERTS}/#")
    publish(connect, "control", f"{ALERTS}/after", b"after the commands")
    relayed.topics_until(f"{ALERTS}/after")
    back = Collector()
    # The same client id again. Its subscription is renewed, but a new subscription receives
    # nothing published before it: whatever arrives was queued for the session.
    connect("dev-a", {CMD_A: back})
    assert back.wait_for(lambda got: len(got) >= 20), f"only {len(back.received)} arrived"
    assert [m.body for m in back.received] == [f"command {i}".encode() for i in range(20)]
    assert first.received == []


def test_a_command_delivered_but_not_acknowledged_before_a_crash_is_sent_again(
    connect: Connect, raw: Raw
) -> None:
    """The device's socket got the command, then the device died before its PUBACK: the broker
    must send it again when the session resumes (amqtt forgot it; edgewise's plugin does not)."""
    doomed = raw("dev-a", manual_ack=True)
    doomed.start().subscribe(CMD_A)
    publish(connect, "control", CMD_A, b"install credit 4")
    assert doomed.topics_until(CMD_A) == [CMD_A]
    doomed.client.loop_stop()
    line = doomed.client.socket()
    assert line is not None
    line.close()  # no PUBACK, no DISCONNECT
    resumed = raw("dev-a", "dev-a").start()
    assert resumed.topics_until(CMD_A) == [CMD_A]
    assert resumed.received == [(CMD_A, b"install credit 4")]
    assert resumed.retain_flags == [False]  # sent again, not a retained message


def test_a_half_open_connection_yields_the_last_will_after_the_keepalive(
    connect: Connect, raw: Raw
) -> None:
    """A device that vanishes without its socket closing (power cut on the far side of a NAT):
    only the keepalive can tell. Mosquitto gives up after 1.5 x keepalive; so must we."""
    control = Collector()
    connect("control", {all_devices(Kind.STATE): control})
    device = raw("dev-a")
    offline = encode(State(status=Status.OFFLINE, reason="connection lost"))
    device.client.will_set(STATE_A, offline, qos=1, retain=True)
    device.start(keepalive=1)
    device.client.loop_stop()  # no more PINGREQ, and the socket stays open
    assert control.wait_for(lambda got: len(got) == 1, timeout=10.0), "no will"
    will = control.received[0].body
    assert isinstance(will, State)
    assert (will.status, will.reason) == (Status.OFFLINE, "connection lost")


def test_a_forged_last_will_on_another_devices_state_is_never_published(
    connect: Connect, raw: Raw
) -> None:
    control = Collector()
    connect("control", {all_devices(Kind.STATE): control})
    forger = raw("dev-b")
    forger.client.will_set(STATE_A, encode(State(status=Status.OFFLINE)), qos=1, retain=True)
    forger.start(wait=False)  # the embedded broker refuses it; Mosquitto accepts it
    forger.client.loop_stop()
    line = forger.client.socket()
    if line is not None:  # still open: drop it without DISCONNECT, as a crash would
        line.close()
    publish(connect, "dev-a", STATE_A, encode(State(status=Status.ONLINE)))
    assert control.wait_for(lambda got: len(got) >= 1)
    assert [m.body.status for m in control.received] == [Status.ONLINE]  # type: ignore[union-attr]


def test_a_100_kb_payload_is_relayed_intact(connect: Connect, raw: Raw) -> None:
    reader = raw("control", "control-reader").start()
    reader.subscribe(f"{ALERTS}/#")
    payload = bytes(range(256)) * 400  # 102,400 bytes
    publish(connect, "control", f"{ALERTS}/big", payload)
    reader.topics_until(f"{ALERTS}/big")
    assert reader.received == [(f"{ALERTS}/big", payload)]


# -- the embedded broker only --------------------------------------------------------------


def test_a_payload_over_the_cap_disconnects_its_publisher_and_reaches_no_one(
    broker_credentials: Credentials,
) -> None:
    with EmbeddedBroker(
        port=0, password_file=broker_credentials.password_file, max_payload=10_000
    ) as server:
        password = broker_credentials.passwords["control"]
        reader = RawClient(server.port, "control", password, "control-reader").start()
        reader.subscribe(f"{ALERTS}/#")
        writer = RawClient(server.port, "control", password, "control-writer").start()
        gone = threading.Event()
        writer.client.on_disconnect = lambda *_: gone.set()
        writer.client.publish(f"{ALERTS}/big", b"x" * 10_001, qos=1)
        assert gone.wait(DELIVERY_TIMEOUT), "the broker kept the connection"
        writer.client.loop_stop()
        small = RawClient(server.port, "control", password, "control-small").start()
        small.client.publish(f"{ALERTS}/small", b"x" * 10_000, qos=1)
        assert reader.topics_until(f"{ALERTS}/small") == [f"{ALERTS}/small"]
        for client in (reader, small):
            client.stop()


def test_without_password_file_or_acl_anyone_connects_and_reads_everything() -> None:
    """The loopback demo mode: `edgewise broker --acl none` with no --password-file."""
    with EmbeddedBroker(port=0, acl=None) as server:
        reader = RawClient(server.port, "anyone", "", "reader").start()
        reader.subscribe("#")
        writer = RawClient(server.port, "dev-b", "wrong", "writer").start()
        writer.client.publish(CMD_A, b"unchecked", qos=1)
        assert reader.topics_until(CMD_A) == [CMD_A]
        for client in (reader, writer):
            client.stop()
