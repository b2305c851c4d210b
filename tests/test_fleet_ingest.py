"""Ingest through a real Mosquitto: device reports reach the registry and the collector,
bad messages are dropped and counted without stopping anything, nothing is lost at QoS 1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fleet_telemetry import bundle_ref, input_profile, repository_with, window
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Connect

from edgewise import Bundle
from edgewise.exceptions import StoreError
from edgewise.fleet.api import create_app
from edgewise.fleet.collector import Collector
from edgewise.fleet.ingest import Ingest, IngestCounts
from edgewise.fleet.ingest_metrics import IngestMetrics
from edgewise.fleet.references import ReferenceProfiles
from edgewise.fleet.registry import Registry
from edgewise.fleet.store import Store
from edgewise.transport import Connection
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.messages import BundleRef, Event, State, Status, Telemetry, encode
from edgewise.transport.topics import Kind, device_topic

StartIngest = Callable[..., Ingest]


@pytest.fixture
def start_ingest(
    broker: Broker, store: Store, tmp_path: Path, bundle_path: Path
) -> Iterator[StartIngest]:
    started: list[tuple[Ingest, Connection]] = []
    references = ReferenceProfiles(repository_with(tmp_path / "repo", bundle_path))

    def start(registry: Registry | None = None, **options: float) -> Ingest:
        connection = Connection("control-ingest", broker.settings(CONTROL_USER))
        ingest = Ingest(
            connection,
            registry or Registry(store),
            Collector(store, references),
            **options,  # type: ignore[arg-type]
        ).start()
        connection.start()
        assert connection.wait_connected(DELIVERY_TIMEOUT)
        started.append((ingest, connection))
        return ingest

    yield start
    for ingest, connection in started:
        connection.stop()  # first: nothing arrives once ingest stops
        ingest.stop()


def wait_for(ingest: Ingest, done: Callable[[IngestCounts], bool]) -> IngestCounts:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        counts = ingest.counts()
        if done(counts):
            return counts
        time.sleep(0.05)
    raise AssertionError(f"ingest did not get there in time: {ingest.counts()}")


def test_reports_reach_the_registry_and_bad_ones_are_dropped_without_stopping(
    start_ingest: StartIngest, connect: Connect, store: Store, bundle: Bundle
) -> None:
    ingest = start_ingest()
    device = connect("dev-a")
    ref = bundle_ref(bundle)
    telemetry_topic = device_topic("dev-a", Kind.TELEMETRY)
    device.publish(telemetry_topic, b"{not json")
    device.publish(device_topic("dev-a", Kind.EVENTS), encode(State(status=Status.ONLINE)))
    # A body that names another device is still dev-a's: the id comes from the topic.
    claim = json.loads(encode(Event(name="install.done", detail={"version": 3})))
    claim["device"] = "dev-b"
    device.publish(device_topic("dev-a", Kind.EVENTS), json.dumps(claim).encode())
    # Publishing on another device's topic is refused by the broker's ACL.
    device.publish(device_topic("dev-b", Kind.STATE), encode(State(status=Status.ONLINE)))
    device.publish(
        device_topic("dev-a", Kind.STATE),
        encode(State(status=Status.ONLINE, active=ref, labels={"site": "berlin"})),
        retain=True,
    )
    device.publish(telemetry_topic, encode(window(ref, 1000.0, inputs=input_profile(30, 1))))
    counts = wait_for(ingest, lambda c: c.stored >= 3)
    assert counts.rejected == 2  # bad JSON; a state on the events topic
    known = store.device("dev-a")
    assert known is not None and known.online and known.labels == {"site": "berlin"}
    assert (known.bundle_name, known.bundle_version) == (ref.name, ref.version)
    assert [e.kind for e in store.events("dev-a")] == ["install.done"]
    assert store.device("dev-b") is None
    assert len(store.telemetry(ref.name, ref.version)) == 1


def test_every_message_arrives_once_through_the_broker_at_qos_1(
    start_ingest: StartIngest, connect: Connect, store: Store, bundle: Bundle
) -> None:
    ingest = start_ingest(batch_size=50)
    ref = bundle_ref(bundle)
    profile = input_profile(20, 1)
    sent: set[str] = set()
    for device_id in ("dev-a", "dev-b"):
        device = connect(device_id)
        for i in range(150):
            message = window(ref, 1000.0 + i, inputs=profile)
            device.publish(device_topic(device_id, Kind.TELEMETRY), encode(message))
            sent.add(f"{device_id}/{message.id}")
    counts = wait_for(ingest, lambda c: c.stored >= 300)
    assert (counts.stored, counts.duplicates, counts.rejected) == (300, 0, 0)
    stored = {w.message_id for w in store.telemetry(ref.name, ref.version)}
    assert stored == sent
    buckets = store.aggregates((ref.name, ref.version))
    assert [b.bucket_start for b in buckets] == [960.0, 1020.0, 1080.0, 1140.0]
    assert sum(b.windows for b in buckets) == 300
    assert sum(b.rows for b in buckets) == 300 * 20


class _FlakyRegistry(Registry):
    """A registry whose store is unavailable for its first `failures` batches."""

    def __init__(self, store: Store, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    def record(self, batch: object) -> int:  # type: ignore[override]
        if self.failures:
            self.failures -= 1
            raise StoreError("store test: connection refused")
        return super().record(batch)  # type: ignore[arg-type]


def test_a_batch_the_store_refuses_is_retried_not_dropped(
    start_ingest: StartIngest, connect: Connect, store: Store
) -> None:
    ingest = start_ingest(registry=_FlakyRegistry(store, 3), retry_initial=0.05)
    device = connect("dev-a")
    device.publish(device_topic("dev-a", Kind.EVENTS), encode(Event(name="slots.repaired")))
    counts = wait_for(ingest, lambda c: c.stored >= 1)
    assert counts.store_errors == 3 and counts.lost == 0
    assert [e.kind for e in store.events("dev-a")] == ["slots.repaired"]
    app = create_app(store)
    app.state.metrics.register(IngestMetrics(ingest))  # as the service does
    with TestClient(app) as client:
        exposed = client.get("/metrics").text
    assert "edgewise_ingest_store_errors_total 3.0" in exposed
    assert "edgewise_ingest_stored_total 1.0" in exposed
    assert "edgewise_ingest_queue_depth 0.0" in exposed


def test_stopping_with_the_store_down_gives_up_and_counts_what_it_lost(
    start_ingest: StartIngest, connect: Connect, store: Store
) -> None:
    ingest = start_ingest(registry=_FlakyRegistry(store, 10**6), retry_initial=0.05)
    device = connect("dev-a")
    device.publish(device_topic("dev-a", Kind.EVENTS), encode(Event(name="slots.repaired")))
    wait_for(ingest, lambda c: c.store_errors >= 2)
    started = time.monotonic()
    ingest.stop(timeout=0.5)
    assert time.monotonic() - started < DELIVERY_TIMEOUT
    counts = ingest.counts()
    assert (counts.lost, counts.stored) == (1, 0)
    assert store.events("dev-a") == []


def test_numbers_the_store_cannot_hold_are_refused_not_retried(
    start_ingest: StartIngest, connect: Connect, store: Store, bundle: Bundle
) -> None:
    ingest = start_ingest()
    device = connect("dev-a")
    ref = bundle_ref(bundle)
    huge = BundleRef(ref.name, 2**40, ref.sha256, ref.length)
    bad_count = Telemetry(
        window_start=1000.0, window_end=1060.0, bundle=ref, metrics={"requests": -5}
    )
    for topic, message in [
        (Kind.STATE, State(status=Status.ONLINE, active=huge)),
        (Kind.TELEMETRY, window(huge, 1000.0, inputs=None)),
        (Kind.TELEMETRY, bad_count),
        (Kind.TELEMETRY, window(ref, 1000.0, inputs=None, requests=4)),
    ]:
        device.publish(device_topic("dev-a", topic), encode(message))
    counts = wait_for(ingest, lambda c: c.stored >= 1 and c.rejected >= 3)
    assert (counts.stored, counts.rejected, counts.store_errors) == (1, 3, 0)
    [point] = store.aggregates((ref.name, ref.version))
    assert point.requests == 4
