"""Ingest: every device's state, events and telemetry, from the broker into the registry and
the collector.

paho's network thread only checks each message (`Connection` decodes states and events with
`transport.messages.decode` and glances at telemetry frames: a bad one is logged with its topic
and reason, counted, dropped) and puts it on a bounded queue; one worker thread takes the queue
in batches (up to `batch_size` messages or `batch_wait` seconds) and hands each batch to
`Registry.record` and `Collector.record`, one store transaction each. The collector decodes the
batch's telemetry frames in one Rust call that releases the GIL, so the network thread keeps
reading meanwhile. The device id always comes from the topic, which the broker's ACL ties to
the MQTT username; nothing in a body can claim another device.

With a `TelemetrySubscriber` (the Rust core's own MQTT session, the service's choice),
telemetry does not pass through paho at all: that session's thread receives and queues the
frames, a second worker takes them a batch at a time already decoded (one call), records them
(`Collector.record_frames`) and only then acknowledges them to the broker, so a crash before the
commit loses nothing: the broker redelivers, and the store counts each window once.

Losing nothing at QoS 1: the control client's session is persistent (`Connection` connects
with clean_session False and a stable client id), so the broker queues messages while the
service is away. A full queue blocks the network thread, which stops reading the socket: the
broker holds the rest. A batch the store refuses (a database restart) is retried with a bounded
backoff until it is stored, never dropped; only `stop` with a store still failing after its
timeout gives the batch up, and says how many messages that lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from .._core import TelemetryDelivery, TelemetrySubscriber
from ..exceptions import StoreError
from ..transport.backoff import Backoff
from ..transport.client import Connection
from ..transport.inbound import Inbound
from ..transport.messages import Event, Message, State, Telemetry, TransferRequest
from ..transport.telemetry_frame import RawTelemetry
from ..transport.topics import Kind, all_devices
from .collector import Collector
from .registry import Registry

log = logging.getLogger(__name__)

T = TypeVar("T")
Item = tuple[str, Message | bytes]  # bytes: a raw telemetry frame


@dataclass(frozen=True)
class IngestCounts:
    """What ingest has done so far, for /metrics."""

    received: int  # messages put on the queue
    stored: int  # states applied, events and windows newly stored
    duplicates: int  # events and windows that were redeliveries
    rejected: int  # messages that failed their checks (or a handler), dropped
    queue_depth: int
    batches: int
    store_errors: int  # failed store transactions (each retried)
    lost: int  # messages given up at stop while the store was failing


class Ingest:
    """Subscribes to every device's reports and dispatches them in batches from one thread."""

    def __init__(
        self,
        connection: Connection,
        registry: Registry,
        collector: Collector,
        *,
        batch_size: int = 1000,
        batch_wait: float = 0.05,
        queue_size: int = 20_000,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        telemetry: TelemetrySubscriber | None = None,
    ) -> None:
        self.connection = connection
        self.telemetry = telemetry
        self._kinds = (Kind.STATE, Kind.EVENTS) + (() if telemetry else (Kind.TELEMETRY,))
        self.registry = registry
        self.collector = collector
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self._retry = (retry_initial, retry_max)
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("received", "stored", "duplicates", "rejected", "batches", "store_errors", "lost"),
            0,
        )
        self._stopping = threading.Event()  # no more messages will be taken in
        self._abandon = threading.Event()  # stop retrying a failing store
        self._worker = threading.Thread(target=self._run, name="fleet-ingest", daemon=True)
        self._telemetry_worker = threading.Thread(
            target=self._run_telemetry, name="fleet-telemetry", daemon=True
        )

    def start(self) -> Ingest:
        """Subscribe and start the worker (before or after the connection is started)."""
        for kind in self._kinds:
            self.connection.subscribe(all_devices(kind), self._receive)
        if self.telemetry is not None:  # an earlier version's session read telemetry too
            self.connection.give_up(all_devices(Kind.TELEMETRY))
        self._worker.start()
        if self.telemetry is not None:
            self._telemetry_worker.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Take no more messages, store those queued, then end the worker. A store that keeps
        failing for `timeout` seconds makes the worker give up what it holds (counted as lost).

        Stop the connection first: paho acknowledges a message once it is handed over, so one
        arriving after this is dropped (counted as lost) although the broker thinks it
        delivered. Telemetry of the `TelemetrySubscriber` not yet committed stays with the
        broker (its session is disconnected last)."""
        for kind in self._kinds:
            self.connection.remove_handler(all_devices(kind), self._receive)
        self._stopping.set()
        workers = [w for w in (self._worker, self._telemetry_worker) if w.is_alive()]
        for worker in workers:
            worker.join(timeout)
        if any(w.is_alive() for w in workers):
            self._abandon.set()
            for worker in workers:
                worker.join(timeout)
        if self.telemetry is not None:
            self.telemetry.stop()

    def counts(self) -> IngestCounts:
        with self._lock:
            counts = dict(self._counts)
        counts["rejected"] += (
            self.connection.dropped + self.registry.rejected + self.collector.rejected
        )
        pending = 0 if self.telemetry is None else self.telemetry.pending
        return IngestCounts(queue_depth=self._queue.qsize() + pending, **counts)

    # -- network thread ----------------------------------------------------------------------

    def _receive(self, inbound: Inbound) -> None:
        body = inbound.body
        if isinstance(body, TransferRequest):
            return  # bundle chunk requests: the chunk server's business
        if inbound.device is None or not isinstance(body, State | Event | Telemetry | RawTelemetry):
            self._add(rejected=1)
            log.warning("%s: not a device report, dropped", inbound.topic)
            return
        item: Item = (inbound.device, body.payload if isinstance(body, RawTelemetry) else body)
        # Blocking while the worker catches up is the backpressure: paho stops reading and the
        # broker keeps the rest for this persistent session. Bounded waits let stop() through.
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.5)
            except queue.Full:
                continue
            self._add(received=1)
            return
        self._add(lost=1)

    # -- worker ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._dispatch(batch)
            elif self._stopping.is_set():
                return

    def _run_telemetry(self) -> None:
        """Takes the subscriber's batches, records them, then acknowledges them."""
        assert self.telemetry is not None
        while not self._stopping.is_set():
            delivery = self.telemetry.next_batch()
            if delivery is None:
                continue
            self._add(received=len(delivery), batches=1)
            if self._record_delivery(delivery):
                self.telemetry.commit(delivery)

    def _record_delivery(self, delivery: TelemetryDelivery) -> bool:
        """Whether the delivery is done with (stored, or refused for good): then it is acked."""
        for topic, reason in delivery.refused:
            self._add(rejected=1)
            log.warning("%s: telemetry dropped: %s", topic, reason)
        devices, frames = delivery.devices, delivery.frames
        if not devices:
            return True
        try:
            return self._record_windows(
                len(devices), lambda: self.collector.record_frames(devices, frames), held=True
            )
        except Exception:
            # Something in the batch that no retry will fix: store the frames one at a time, as
            # `_dispatch` does, and ack them all (the ones that fail would fail again).
            log.exception(
                "a telemetry batch of %d frames failed; storing them one by one", len(devices)
            )
            for index, device in enumerate(devices):
                self._dispatch_one((device, frames.payload(index)))
            return True

    def _next_batch(self) -> list[Item]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _dispatch(self, batch: Sequence[Item]) -> None:
        try:
            self._store(*_split(batch))
        except Exception:
            # Something in the batch that no retry will fix: find it by storing one at a time.
            log.exception("a batch of %d messages failed; storing them one by one", len(batch))
            for item in batch:
                self._dispatch_one(item)
        self._add(batches=1)

    def _dispatch_one(self, item: Item) -> None:
        try:
            self._store(*_split([item]))
        except Exception:
            self._add(rejected=1)
            log.exception("device %s: message %s could not be stored", *_who(item))

    def _store(
        self,
        reports: Sequence[tuple[str, State | Event]],
        windows: Sequence[tuple[str, Telemetry | bytes]],
    ) -> None:
        if reports:
            events = sum(isinstance(m, Event) for _, m in reports)
            refused = self.registry.rejected
            new_events = self._retrying(lambda: self.registry.record(reports), len(reports))
            if new_events is not None:
                states = len(reports) - events - (self.registry.rejected - refused)
                self._add(stored=states + new_events, duplicates=events - new_events)
        if windows:
            self._record_windows(len(windows), lambda: self.collector.record(windows))

    def _record_windows(self, size: int, record: Callable[[], int], *, held: bool = False) -> bool:
        """Runs `record` (of `size` windows) with retries and counts the outcome; False if
        `stop` gave up on it (`held`: the broker still holds those messages, nothing is lost)."""
        refused = self.collector.rejected + self.collector.unattributed
        new_windows = self._retrying(record, size, held=held)
        if new_windows is None:
            return False
        refused = self.collector.rejected + self.collector.unattributed - refused
        self._add(stored=new_windows, duplicates=size - new_windows - refused)
        return True

    def _retrying(self, call: Callable[[], T], size: int, *, held: bool = False) -> T | None:
        """`call()`, retried while the store fails; None if `stop` gave up on it."""
        backoff = Backoff(*self._retry)
        while True:
            try:
                return call()
            except StoreError as exc:
                self._add(store_errors=1)
                log.warning("store unavailable, a batch of %d messages waits: %s", size, exc)
            if self._abandon.wait(backoff.next_delay()):
                if held:
                    log.error("stopping with the store unavailable: %d messages left queued", size)
                    return None
                self._add(lost=size)
                log.error("stopping with the store unavailable: %d messages not stored", size)
                return None

    def _add(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value


def _split(
    batch: Sequence[Item],
) -> tuple[list[tuple[str, State | Event]], list[tuple[str, Telemetry | bytes]]]:
    reports = [(d, m) for d, m in batch if isinstance(m, State | Event)]
    windows = [(d, m) for d, m in batch if isinstance(m, Telemetry | bytes)]
    return reports, windows


def _who(item: Item) -> tuple[str, str]:
    message = item[1]
    return item[0], "(a telemetry frame)" if isinstance(message, bytes) else message.id
