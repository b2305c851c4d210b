"""`edgewise control run`: the control plane as one asyncio service.

One process holds one MQTT session as the control user and runs, side by side:

- the ingest worker (fleet/ingest.py), which turns devices' state and events into the registry
  and their telemetry into the collector's windows, in batches;
- the TUF metadata publisher: the repository's metadata, retained, republished whenever its
  files change (an operator ran `edgewise repo add` or `repo refresh`), and the chunk server
  that hands devices the bundles' bytes;
- the rollout engine and the alert evaluator, each ticking on its own period in a worker
  thread (both are synchronous code over the store);
- the HTTP API under uvicorn, on the same event loop.

Everything the service knows lives in the store, so a restart picks up where it left off: the
broker kept the control session's subscriptions and queued device messages meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root

from ..exceptions import EdgewiseError
from ..transport.client import Connection
from ..transport.telemetry_session import telemetry_subscriber
from ..trust.keys import PRIVATE_SUFFIX, PUBLIC_SUFFIX, load_signer, read_public_key
from .alerts import AlertEvaluator
from .api import create_app
from .collector import Collector
from .config import ControlConfig
from .control import ControlSide
from .ingest import Ingest
from .ingest_metrics import IngestMetrics
from .notifiers import notifiers_for
from .references import ReferenceProfiles
from .registry import Registry
from .rollouts.catalogue import repository_catalogue
from .rollouts.engine import RolloutEngine
from .store import Store

log = logging.getLogger("edgewise.control")

#: The MQTT client id of the control plane: stable, so the broker keeps its session (and queues
#: devices' messages) across restarts.
CLIENT_ID = "edgewise-control"
TELEMETRY_CLIENT_ID = "edgewise-control-telemetry"
CONNECT_TIMEOUT = 30.0
START_TIMEOUT = 30.0


class MetadataPublisher:
    """Republishes the repository's metadata when any of its files changed since last time, or
    when the broker may have lost it (a reconnection to a broker that keeps no retained
    messages across restarts)."""

    def __init__(self, control: ControlSide) -> None:
        self.control = control
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        # Set on paho's network thread, which must not block on publishing; `poll` acts on it.
        self._reconnected = threading.Event()
        control.connection.on_connected(self._reconnected.set)

    def poll(self) -> bool:
        directory = self.control.repository / "metadata"
        state = tuple(
            (path.name, path.stat().st_mtime_ns, path.stat().st_size)
            for path in sorted(directory.glob("*.json"))
        )
        if state == self._seen and not self._reconnected.is_set():
            return False
        self._reconnected.clear()
        self.control.publish_metadata()
        self._seen = state
        log.info("published the repository's metadata (%d files)", len(state))
        return True


class ControlService:
    def __init__(self, config: ControlConfig) -> None:
        self.config = config
        self.api_url: str | None = None  # known once the HTTP server listens

    async def run(self, stop: asyncio.Event, ready: Callable[[str], None] | None = None) -> None:
        """Serve until `stop` is set; `ready` is told the API's URL once everything runs."""
        config = self.config
        store = Store.open(config.store)
        connection = Connection(CLIENT_ID, config.broker)
        references = ReferenceProfiles(config.repository)
        collector = Collector(store, references, window=config.collector_window)
        # Subscribed before the connection starts: the broker's queued session is read at once.
        # Telemetry has a session of its own, read by the Rust core (fleet/ingest.py).
        telemetry = telemetry_subscriber(TELEMETRY_CLIENT_ID, config.broker)
        ingest = Ingest(connection, Registry(store), collector, telemetry=telemetry).start()
        control = ControlSide(connection, config.repository, _operator(config.operator_keys))
        control.start()
        publisher = MetadataPublisher(control)
        known_bundle = repository_catalogue(config.repository)
        engine = RolloutEngine(store, control.send, collector.drift_probe, known_bundle)
        alerts = AlertEvaluator(
            store, config.alert_rules, collector, notifiers_for(config.alert_rules, connection)
        )
        app = create_app(
            store, root=_root(config.repository), known_bundle=known_bundle, collector=collector
        )
        app.state.metrics.register(IngestMetrics(ingest))
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=config.api_host, port=config.api_port, log_config=None, lifespan="off"
            )
        )
        connection.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            if not await asyncio.to_thread(connection.wait_connected, CONNECT_TIMEOUT):
                raise EdgewiseError(
                    f"cannot connect to the broker at {config.broker.host}:{config.broker.port}"
                    f" as {config.broker.username!r} within {CONNECT_TIMEOUT:.0f} s"
                )
            await asyncio.to_thread(publisher.poll)
            tasks = [
                asyncio.create_task(server.serve(), name="api"),
                _every(config.rollout_tick, engine.tick, "rollouts"),
                _every(config.alert_rules.interval, lambda: alerts.evaluate(time.time()), "alerts"),
                _every(config.metadata_poll, publisher.poll, "metadata"),
            ]
            self.api_url = await _started(server, tasks[0])
            if ready is not None:
                ready(self.api_url)
            stopping = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # a part that ended on its own takes the service down with it
        finally:
            server.should_exit = True
            for task in tasks[1:]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # The connection first: paho acknowledges what it hands over, so ingest must then
            # store everything it was handed before the process ends.
            await asyncio.to_thread(connection.stop)
            await asyncio.to_thread(ingest.stop)
            store.close()


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> str:
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT
    while not server.started:
        if serving.done():
            serving.result()
            raise EdgewiseError("the HTTP API stopped before it started listening")
        if asyncio.get_running_loop().time() > deadline:
            raise EdgewiseError(f"the HTTP API did not start within {START_TIMEOUT:.0f} s")
        await asyncio.sleep(0.05)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    return f"http://{host}:{port}"


def _every(period: float, work: Callable[[], object], name: str) -> asyncio.Task[None]:
    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(work)
            except EdgewiseError as exc:
                log.warning("%s: %s", name, exc)
            except Exception:  # a bug in one part must not stop the others: log it loudly
                log.exception("%s failed", name)
            await asyncio.sleep(period)

    return asyncio.create_task(loop(), name=name)


def _operator(directory: Path) -> CryptoSigner:
    public = read_public_key(directory / f"operator{PUBLIC_SUFFIX}")
    return load_signer(directory / f"operator{PRIVATE_SUFFIX}", public)


def _root(repository: Path) -> Root:
    return Metadata[Root].from_file(str(repository / "metadata" / "root.json")).signed


class BackgroundService:
    """The control plane on its own thread and event loop, for the demo and benchmarks that run
    broker, control plane and simulated devices in one process. A context manager: entering
    returns once the API listens (its URL is `api_url`), leaving stops everything."""

    def __init__(self, config: ControlConfig) -> None:
        self.service = ControlService(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="control-plane", daemon=True)

    @property
    def api_url(self) -> str:
        assert self.service.api_url is not None, "the service has not started"
        return self.service.api_url

    def __enter__(self) -> BackgroundService:
        self._thread.start()
        self._ready.wait(START_TIMEOUT + CONNECT_TIMEOUT)
        if self._error is not None:
            raise self._error
        if self.service.api_url is None:
            raise EdgewiseError("the control plane did not start in time")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.service.run(self._stop, lambda url: self._ready.set())

        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the thread that waits in __enter__
            self._error = exc
        finally:
            self._ready.set()
