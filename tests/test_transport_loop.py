"""Many connections on one `NetworkLoop` thread, against a real Mosquitto: publishing from many
threads at once, a broker restart, a dropped connection's will, and a clean stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Collector

from edgewise.transport import Connection, Event, State, Status, Will, encode
from edgewise.transport.loop import NetworkLoop
from edgewise.transport.topics import Kind, all_devices, device_topic

CONNECTIONS = 24
PER_THREAD = 25
EVENTS = device_topic("dev-a", Kind.EVENTS)
RECONNECT_TIMEOUT = 45.0


@pytest.fixture
def loop() -> Iterator[NetworkLoop]:
    running = NetworkLoop().start()
    yield running
    running.stop()


def connections_on(
    loop: NetworkLoop, broker: Broker, count: int, on_ready: Callable[[str], None] | None = None
) -> list[Connection]:
    # One user, many sessions: the ACL is per user, the session per client id.
    connections = [
        Connection(f"dev-a-{i}", broker.settings("dev-a"), loop=loop) for i in range(count)
    ]
    for connection in connections:
        if on_ready is not None:  # before start: the first connect must be heard too
            connection.on_ready(lambda c=connection: on_ready(c.client_id))
        connection.start()
    return connections


def publish_from_threads(connections: list[Connection]) -> None:
    def publish(connection: Connection) -> None:
        for n in range(PER_THREAD):
            event = Event(name="test.loop", detail={"from": connection.client_id, "n": n})
            connection.publish(EVENTS, encode(event), retain=False)

    threads = [threading.Thread(target=publish, args=(c,)) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DELIVERY_TIMEOUT)


def test_connections_on_one_loop_deliver_everything_and_survive_a_broker_restart(
    broker: Broker, connect, loop: NetworkLoop
):
    events = Collector()
    connect("control", {all_devices(Kind.EVENTS): events})
    ready: list[str] = []
    became_ready = threading.Condition()

    def on_ready(client_id: str) -> None:
        with became_ready:
            ready.append(client_id)
            became_ready.notify_all()

    connections = connections_on(loop, broker, CONNECTIONS, on_ready)
    assert all(c.wait_connected(DELIVERY_TIMEOUT) for c in connections)
    publish_from_threads(connections)
    expected = CONNECTIONS * PER_THREAD
    assert events.wait_for(lambda got: len(got) >= expected), len(events.received)
    assert len({(m.body.detail["from"], m.body.detail["n"]) for m in events.received}) == expected

    broker.stop()
    broker.start()
    # wait_connected can answer before a connection has noticed the restart: readiness is
    # the signal, with room for 24 reconnects on one loop thread of a loaded 2-core machine.
    with became_ready:  # every connection said it was ready again after reconnecting
        assert became_ready.wait_for(
            lambda: all(ready.count(c.client_id) >= 2 for c in connections), RECONNECT_TIMEOUT
        )
    publish_from_threads(connections)
    # QoS 1 and persistent sessions: nothing published after the restart is lost.
    assert events.wait_for(lambda got: len(got) >= 2 * expected, 30.0), len(events.received)

    started = time.monotonic()
    for connection in connections:
        connection.stop()
    assert time.monotonic() - started < 10.0  # each stop is one DISCONNECT, not a timeout
    assert len(loop) == 0


def test_a_dropped_connection_leaves_its_will_and_comes_back(
    broker: Broker, connect, loop: NetworkLoop
):
    states = Collector()
    connect("control", {all_devices(Kind.STATE): states})
    topic = device_topic("dev-a", Kind.STATE)
    will = Will(topic, encode(State(status=Status.OFFLINE, reason="connection lost")))
    device = Connection("dev-a", broker.settings("dev-a"), will=will, loop=loop)
    device.start()
    assert device.wait_connected(DELIVERY_TIMEOUT)
    device.drop()
    assert states.wait_for(
        lambda got: any(isinstance(m.body, State) and m.body.status is Status.OFFLINE for m in got)
    )
    assert device.wait_connected(30.0)  # reconnected by the loop, with backoff
    device.stop()
