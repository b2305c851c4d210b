"""The Rust telemetry subscriber against real brokers: batches arrive decoded with the device
from the topic, a bad frame is refused alone, nothing is lost at QoS 1 when the consumer dies
between receipt and commit, the queue is bounded, it reconnects after a broker restart and
stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fleet_telemetry import bundle_ref, input_profile, repository_with, window
from mqtt_broker import DELIVERY_TIMEOUT, AnyBroker, Connect

from edgewise import Bundle
from edgewise._core import TelemetryBatch, TelemetryDelivery, TelemetrySubscriber
from edgewise.fleet.collector import Collector
from edgewise.fleet.ingest import Ingest
from edgewise.fleet.ingest_metrics import IngestMetrics
from edgewise.fleet.references import ReferenceProfiles
from edgewise.fleet.registry import Registry
from edgewise.fleet.store import Store
from edgewise.transport import Connection
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.messages import encode
from edgewise.transport.telemetry_session import telemetry_subscriber
from edgewise.transport.topics import Kind, all_devices, device_topic

Subscribe = Callable[..., TelemetrySubscriber]


@pytest.fixture
def subscribe(broker: AnyBroker) -> Iterator[Subscribe]:
    """Start a subscriber as the control user, wait until it is subscribed; stopped at
    teardown."""
    started: list[TelemetrySubscriber] = []

    def start(client_id: str = "telemetry-test", **options: int) -> TelemetrySubscriber:
        subscriber = TelemetrySubscriber(
            *address(broker),
            client_id,
            username=CONTROL_USER,
            password=broker.credentials.passwords[CONTROL_USER],
            backoff_initial=0.1,
            backoff_max=0.5,
            **options,
        )
        started.append(subscriber)
        wait_until(lambda: subscriber.connected, f"{client_id} did not subscribe")
        return subscriber

    yield start
    for subscriber in started:
        subscriber.stop()


def address(broker: AnyBroker) -> tuple[str, int]:
    settings = broker.settings(CONTROL_USER)
    return settings.host, settings.port


def wait_until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def take(
    subscriber: TelemetrySubscriber, count: int, *, commit: bool = False
) -> list[TelemetryDelivery]:
    """Deliveries until `count` messages came (bounded wait), each committed if `commit`
    (Mosquitto sends no more than 20 unacknowledged)."""
    deliveries: list[TelemetryDelivery] = []
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while sum(map(len, deliveries)) < count:
        assert time.monotonic() < deadline, f"{sum(map(len, deliveries))} of {count} came"
        delivery = subscriber.next_batch(timeout=0.2)
        if delivery is not None:
            deliveries.append(delivery)
            if commit:
                assert subscriber.commit(delivery) == len(delivery)
    return deliveries


def frame(bundle: Bundle, start: float) -> bytes:
    return encode(window(bundle_ref(bundle), start, inputs=input_profile(20, int(start))))


def window_starts(deliveries: list[TelemetryDelivery]) -> list[tuple[str, float]]:
    out = []
    for delivery in deliveries:
        for device, fields in zip(delivery.devices, delivery.frames.windows(), strict=True):
            out.append((device, fields if isinstance(fields, str) else fields[2]))
    return out


def test_batches_arrive_decoded_with_the_device_from_the_topic(
    any_broker: AnyBroker, bundle: Bundle
) -> None:
    """With Mosquitto and with the embedded broker."""
    subscriber = telemetry_subscriber("telemetry-test", any_broker.settings(CONTROL_USER))
    devices = {d: Connection(d, any_broker.settings(d)).start() for d in ("dev-a", "dev-b")}
    try:
        wait_until(lambda: subscriber.connected, f"no session: {subscriber.last_error}")
        for device, start in (("dev-a", 0.0), ("dev-b", 60.0), ("dev-a", 120.0)):
            assert devices[device].wait_connected(DELIVERY_TIMEOUT)
            devices[device].publish(device_topic(device, Kind.TELEMETRY), frame(bundle, start))
        devices["dev-b"].publish(device_topic("dev-b", Kind.TELEMETRY), b"not a frame")
        deliveries = take(subscriber, 4)
        committed = sum(subscriber.commit(d) for d in deliveries)
    finally:
        for connection in devices.values():
            connection.stop()
        subscriber.stop()
    got = window_starts(deliveries)
    assert sorted(g for g in got if not isinstance(g[1], str)) == [
        ("dev-a", 0.0),
        ("dev-a", 120.0),
        ("dev-b", 60.0),
    ]
    refused = [g for g in got if isinstance(g[1], str)]
    assert len(refused) == 1 and refused[0][0] == "dev-b"
    assert refused[0][1].startswith("not an edgewise telemetry frame")
    assert committed == 4


def test_nothing_is_lost_when_the_consumer_dies_before_committing(
    broker: AnyBroker, subscribe: Subscribe, connect: Connect, bundle: Bundle
) -> None:
    # The persistent session exists (subscribed) before the devices publish.
    subscribe("telemetry-crash").stop()
    device = connect("dev-a")
    for i in range(30):
        device.publish(device_topic("dev-a", Kind.TELEMETRY), frame(bundle, 60.0 * i))
    settings = broker.settings(CONTROL_USER)
    consumer = textwrap.dedent(
        f"""
        import sys, time
        from edgewise._core import TelemetrySubscriber
        s = TelemetrySubscriber({settings.host!r}, {settings.port}, "telemetry-crash",
                                username={settings.username!r}, password={settings.password!r})
        deadline = time.monotonic() + {DELIVERY_TIMEOUT}
        while time.monotonic() < deadline:
            d = s.next_batch(timeout=0.2)
            if d is not None:
                print(len(d), flush=True)  # received, never committed
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", consumer], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # a batch came in
        assert int(line) > 0
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=DELIVERY_TIMEOUT)
    # The broker redelivers everything to the same session: nothing was acknowledged.
    subscriber = subscribe("telemetry-crash")
    deliveries = take(subscriber, 30, commit=True)
    assert sorted(start for _, start in window_starts(deliveries)) == [60.0 * i for i in range(30)]


def test_a_full_queue_stops_the_reading_and_the_broker_keeps_the_rest(
    subscribe: Subscribe, connect: Connect, bundle: Bundle
) -> None:
    # Held at most: 5 queued, the one the reading thread waits to queue, a batch of 2 decoded
    # and waiting to be taken, and the next batch of 2 waiting for room: 10 of 15.
    subscriber = subscribe(queue=5, batch_size=2)
    device = connect("dev-a")
    for i in range(15):
        device.publish(device_topic("dev-a", Kind.TELEMETRY), frame(bundle, 60.0 * i))
    wait_until(lambda: subscriber.pending == 5, "the queue did not fill")
    time.sleep(0.3)  # time for more to arrive, were the queue not bounded
    assert subscriber.pending == 5
    deliveries = take(subscriber, 15)
    assert sorted(start for _, start in window_starts(deliveries)) == [60.0 * i for i in range(15)]


def test_it_reconnects_after_the_broker_restarts_and_stops_cleanly(
    broker: AnyBroker, subscribe: Subscribe, connect: Connect, bundle: Bundle
) -> None:
    subscriber = subscribe("telemetry-restart")
    broker.stop()
    wait_until(lambda: not subscriber.connected, "the session did not notice the broker left")
    broker.start()
    wait_until(lambda: subscriber.connected, "the session did not come back")
    assert subscriber.connections == 2
    connect("dev-a").publish(device_topic("dev-a", Kind.TELEMETRY), frame(bundle, 0.0))
    assert window_starts(take(subscriber, 1)) == [("dev-a", 0.0)]
    started = time.monotonic()
    subscriber.stop()
    assert time.monotonic() - started < 5 and not subscriber.connected
    assert subscriber.next_batch(timeout=0.1) is None


def test_tls_with_the_brokers_ca(tls_broker: AnyBroker, bundle: Bundle) -> None:
    settings = tls_broker.settings(CONTROL_USER)
    subscriber = telemetry_subscriber("telemetry-tls", settings)
    try:
        wait_until(lambda: subscriber.connected, f"no TLS session: {subscriber.last_error}")
    finally:
        subscriber.stop()


def test_ingest_records_the_subscribers_batches_once_and_counts_bad_ones(
    broker: AnyBroker,
    connect: Connect,
    store: Store,
    tmp_path: Path,
    bundle_path: Path,
    bundle: Bundle,
) -> None:
    references = ReferenceProfiles(repository_with(tmp_path / "repo", bundle_path))
    settings = broker.settings(CONTROL_USER)
    # An earlier version's session read telemetry through paho; the broker keeps that
    # subscription until ingest gives it up.
    earlier = Connection("control-ingest", settings)
    earlier.subscribe(all_devices(Kind.TELEMETRY), lambda inbound: None)
    earlier.start()
    assert earlier.wait_connected(DELIVERY_TIMEOUT)
    earlier.stop()
    connection = Connection("control-ingest", settings)
    subscriber = telemetry_subscriber("control-ingest-telemetry", settings)
    ingest = Ingest(
        connection, Registry(store), Collector(store, references), telemetry=subscriber
    ).start()
    connection.start()
    try:
        wait_until(lambda: subscriber.connected, "the telemetry session did not subscribe")
        device = connect("dev-a")
        topic = device_topic("dev-a", Kind.TELEMETRY)
        messages = [
            window(bundle_ref(bundle), 60.0 * i, inputs=input_profile(20, i)) for i in range(10)
        ]
        for message in [*messages, messages[3]]:  # the last one a redelivery of the fourth
            device.publish(topic, encode(message))
        device.publish(topic, b"not a frame")
        wait_until(
            lambda: (c := ingest.counts()).stored == 10 and c.duplicates == 1 and c.rejected == 1,
            f"ingest did not record the windows: {ingest.counts()}",
        )
        assert sum(a.windows for a in store.aggregates((bundle.name, bundle.version), 0.0)) == 10
        assert connection.unexpected == 0  # paho was not sent the telemetry as well
        metrics = {m.name: m.samples[0].value for m in IngestMetrics(ingest).collect()}
        assert metrics["edgewise_telemetry_session_connected"] == 1
        assert metrics["edgewise_telemetry_session_connections"] == 1
        assert metrics["edgewise_ingest_rejected"] == 1
    finally:
        connection.stop()
        ingest.stop()
    assert not subscriber.connected


class FailingOnBatches(Collector):
    """A collector with a bug that only a batch of several frames triggers."""

    def record_frames(self, devices: Sequence[str], frames: TelemetryBatch) -> int:
        if len(devices) > 1:
            raise RuntimeError("a bug in batch recording")
        return super().record_frames(devices, frames)


def test_a_batch_that_fails_is_stored_frame_by_frame_then_acked(
    broker: AnyBroker,
    connect: Connect,
    tmp_path: Path,
    bundle_path: Path,
    bundle: Bundle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store.open(tmp_path / "control.db")
    references = ReferenceProfiles(repository_with(tmp_path / "repo", bundle_path))
    settings = broker.settings(CONTROL_USER)
    connection = Connection("control-ingest", settings)
    subscriber = telemetry_subscriber("control-ingest-telemetry", settings)
    collector = FailingOnBatches(store, references)
    ingest = Ingest(connection, Registry(store), collector, telemetry=subscriber).start()
    connection.start()
    try:
        wait_until(lambda: subscriber.connected, "the telemetry session did not subscribe")
        device = connect("dev-a")
        for i in range(5):
            device.publish(device_topic("dev-a", Kind.TELEMETRY), frame(bundle, 60.0 * i))
        wait_until(lambda: ingest.counts().stored == 5, f"not stored: {ingest.counts()}")
        assert ingest.counts().rejected == 0
        assert "storing them one by one" in caplog.text  # the batch path did fail
    finally:
        connection.stop()
        ingest.stop()
        store.close()
