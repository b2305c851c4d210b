"""`EmbeddedBroker`: an MQTT 3.1.1 broker (amqtt) in a thread of this process, with the fleet
protocol's password file, ACL, payload cap and keepalive.

edgewise owns the listening socket and hands each connection to amqtt as an "external"
connection. That is where two things amqtt 0.12.1 lacks are enforced: the payload cap (a
PUBLISH over the cap closes the connection, as Mosquitto's `max_packet_size` does, before its
payload is read into memory) and the keepalive (amqtt notices a silent client only when its
socket closes, so a half-open connection would never yield its last will: here a connection
silent for 1.5 x its keepalive is closed, and amqtt publishes the will). It also makes port 0
(any free port) work.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker

from ..exceptions import BrokerConfigError, BrokerStartError
from ..transport.acl import Acl, Rule, fleet_acl
from .passwords import read_password_file
from .plugins import FleetAuthPlugin, FleetTopicPlugin, Policy, QueueLimitPlugin
from .redelivery import RedeliveryPlugin
from .retained import FleetBroker, RetainedFilePlugin

log = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD = 256 * 1024  # bytes; bundle chunks and profiles stay well under it
DEFAULT_MAX_QUEUED = 1000  # per absent client, as Mosquitto's max_queued_messages
CONNECT_TIMEOUT = 10.0  # seconds a new connection has to send its CONNECT
IDLE_CHECK_INTERVAL = 0.5  # seconds between looks for connections past their idle limit
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
_LISTENER = "default"
_PLUGINS = (
    FleetAuthPlugin,
    FleetTopicPlugin,
    QueueLimitPlugin,
    RetainedFilePlugin,
    RedeliveryPlugin,
)


@dataclass(frozen=True)
class ServerTls:
    """The broker's certificate chain and key (PEM); clients verify it against their CA."""

    cert_file: Path
    key_file: Path


class PacketTooLarge(Exception):
    """Ends a connection whose packet carries a field over the payload cap."""


class _GuardedReader(StreamReaderAdapter):
    """amqtt's stream reader with a cap on each read, and the time the client last sent.

    amqtt reads a PUBLISH payload with one `read(n)` of exactly its length, so refusing large
    `n` refuses large payloads before they are buffered. The exception ends the connection
    abnormally (amqtt then publishes the client's will)."""

    def __init__(self, reader: asyncio.StreamReader, max_read: int) -> None:
        super().__init__(reader)
        self._max_read = max_read
        self.idle_limit: float | None = CONNECT_TIMEOUT  # until the CONNECT is accepted
        self.last_data = time.monotonic()

    def set_idle_limit(self, seconds: float | None) -> None:
        self.idle_limit = seconds

    def expired(self, now: float) -> bool:
        return self.idle_limit is not None and now - self.last_data > self.idle_limit

    async def read(self, n: int = -1) -> bytes:
        if n > self._max_read:
            raise PacketTooLarge(f"a {n}-byte field, over the cap of {self._max_read}")
        data = await super().read(n)
        self.last_data = time.monotonic()
        return data


class EmbeddedBroker:
    """An MQTT broker for the demo, the tests and small fleets: `start()` returns once it
    listens; `stop()` (or leaving the `with` block) closes every connection.

    Sessions and queued messages live in memory: a restart loses them. Retained messages do
    too, unless `retained_file` keeps them."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        password_file: Path | None = None,
        acl: Iterable[Rule] | None = fleet_acl(),
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        max_queued: int = DEFAULT_MAX_QUEUED,
        tls: ServerTls | None = None,
        retained_file: Path | None = None,
    ) -> None:
        """`port` 0 picks a free port (read `port` after `start`). `password_file` is a
        Mosquitto password file; None accepts any client under the username it gives (for
        loopback only). `acl` defaults to the fleet protocol's; None lets every client publish
        and read everything. `retained_file`: an SQLite file that keeps retained messages
        across restarts (None: in memory only)."""
        if max_payload < 1 or max_queued < 1:
            raise BrokerConfigError("max_payload and max_queued must be at least 1")
        self.host = host
        self.requested_port = port
        self.max_payload = max_payload
        self.tls = tls
        self._ssl = None if tls is None else _server_context(tls)
        self.policy = Policy(
            passwords=None if password_file is None else read_password_file(password_file),
            acl=None if acl is None else Acl(acl),
            max_queued=max_queued,
            retained_file=retained_file,
        )
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._open: dict[_GuardedReader, asyncio.StreamWriter] = {}  # loop thread only

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the broker is not listening yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        scheme = "mqtt" if self.tls is None else "mqtts"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> EmbeddedBroker:
        if self._thread is not None:
            raise RuntimeError("an embedded broker can be started once only")
        self._thread = threading.Thread(target=self._run, name="edgewise-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise BrokerStartError(f"the broker did not listen on {self.host} within {timeout}s")
        if self._failure is not None:
            self._thread.join(STOP_TIMEOUT)
            raise BrokerStartError(
                f"cannot listen on {self.host}:{self.requested_port}: {self._failure}"
            ) from self._failure
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or stop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the embedded broker did not stop within %ss", timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the broker's thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread has no one else to tell
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        broker = FleetBroker(self._amqtt_config())
        await broker.start()
        try:
            server = await asyncio.start_server(
                lambda r, w: self._connected(broker, r, w),
                self.host,
                self.requested_port,
                ssl=self._ssl,
            )
        except OSError:
            await broker.shutdown()
            raise
        self._port = int(server.sockets[0].getsockname()[1])
        log.debug("listening on %s", self.url)
        self._ready.set()
        watchdog = asyncio.create_task(self._close_idle_connections())
        try:
            await self._stop_requested.wait()
        finally:
            watchdog.cancel()
            server.close()
            await broker.shutdown()
            # Connections whose clients had not gone yet: closed here, while the loop still
            # runs to finish closing them.
            for writer in list(self._open.values()):
                writer.transport.abort()
            await server.wait_closed()
            await asyncio.sleep(0)

    async def _connected(
        self, broker: Broker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        guarded = _GuardedReader(reader, self.max_payload)
        adapter = StreamWriterAdapter(writer)
        peer = adapter.get_peer_info()
        if peer is not None:
            self.policy.idle_limits[peer] = guarded.set_idle_limit
        self._open[guarded] = writer
        try:
            await broker.external_connected(guarded, adapter, _LISTENER)
        except (PacketTooLarge, ConnectionError) as exc:
            log.warning("%s: connection closed before it was set up: %s", peer, exc)
        finally:
            del self._open[guarded]
            if peer is not None:
                self.policy.idle_limits.pop(peer, None)
            writer.close()

    async def _close_idle_connections(self) -> None:
        """Close connections silent for longer than their limit: to amqtt that is the same as
        a client whose socket died, so it publishes the client's will."""
        while True:
            await asyncio.sleep(IDLE_CHECK_INTERVAL)
            now = time.monotonic()
            for reader, writer in list(self._open.items()):
                if reader.expired(now):
                    log.warning(
                        "%s: nothing received for %gs: closing",
                        writer.get_extra_info("peername"),
                        reader.idle_limit,
                    )
                    writer.transport.abort()

    def _amqtt_config(self) -> dict[str, Any]:
        plugin = {"policy": self.policy}
        return {
            # Connections come from our own listener (see the module docstring); amqtt skips
            # listeners without a bind address, hence the placeholder.
            "listeners": {_LISTENER: {"type": "external", "bind": "edgewise"}},
            "plugins": {f"{p.__module__}.{p.__qualname__}": plugin for p in _PLUGINS},
        }


def _server_context(tls: ServerTls) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerConfigError(
            f"{tls.cert_file} / {tls.key_file}: cannot load the TLS certificate and key: {exc}"
        ) from exc
    return context
