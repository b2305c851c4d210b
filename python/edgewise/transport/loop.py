"""One network thread for many connections: paho's external-loop interface over a selector.

A `Connection` alone runs a thread of its own, and paho gives each such client a wake-up socket
pair: three file descriptors and a thread stack per connection. The fleet simulator runs
thousands of devices in one process, so their connections share one `NetworkLoop` instead: one
thread waits on every socket with `selectors` (epoll on Linux), reads a socket when it is
readable, writes it when paho has packets queued for it, runs paho's keepalive bookkeeping once a
second, and (re)connects the connections that are due, each with its own backoff. A connection
then costs one socket.

Handlers run on the loop thread, as they do on a connection's own thread: they must hand work
over, never block. Other threads may publish at any time: paho queues the packet and the
connection `kick`s the loop, which then waits for the socket to be writable. The loop decides
that from paho's queue itself (`want_write`) after every step, not from paho's
`on_socket_(un)register_write` callbacks: those rest on a flag that paho reads and writes from
both threads without a lock, and a lost update strands a queued packet (seen at 1,000 devices:
DISCONNECTs that were never written).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

if TYPE_CHECKING:
    from .client import Connection

log = logging.getLogger(__name__)

MISC_INTERVAL = 1.0  # seconds between keepalive checks of every connection
#: Connection attempts per pass of the loop: a burst of thousands of new connections must not
#: starve the traffic of those already up (each attempt blocks for a TCP handshake).
CONNECTS_PER_PASS = 32


class NetworkLoop:
    def __init__(self, name: str = "mqtt-loop") -> None:
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._lock = threading.Lock()  # guards the request lists below
        self._write_wanted: set[paho.Client] = set()
        self._requests: list[Callable[[], None]] = []
        self._woken = False
        self._due: list[tuple[float, int, Connection]] = []  # (when, tie-break, connection)
        self._scheduled: set[Connection] = set()  # in `_due`
        self._order = itertools.count()
        self._clients: dict[Connection, paho.Client] = {}
        self._removing: set[Connection] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ident: int | None = None

    # -- any thread ----------------------------------------------------------------------------

    def start(self) -> NetworkLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (connections still attached are dropped without a word)."""
        self._stopping.set()
        self._wake()
        self._thread.join(timeout)
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def attach(self, connection: Connection, client: paho.Client) -> None:
        """Route `client`'s socket events to this loop (called when the connection is made)."""
        client.on_socket_open = lambda c, u, sock: self._opened(connection, c, sock)
        client.on_socket_close = lambda c, u, sock: self._closed(sock)
        # Set so that paho never writes from the publishing thread; `kick` does the real work.
        client.on_socket_register_write = lambda c, u, sock: self.kick(c)
        self._clients[connection] = client

    def add(self, connection: Connection) -> None:
        """Connect `connection` as soon as the loop gets to it."""
        self._call(lambda: self._schedule(connection, 0.0))

    def remove(self, connection: Connection) -> None:
        """Let go of `connection` once its DISCONNECT is written (`Connection.stop` calls this);
        the connection's `released` says when."""
        self._call(lambda: self._remove(connection))

    def kick(self, client: paho.Client) -> None:
        """`client` may have queued packets: write them (call after every publish, subscribe or
        disconnect from another thread)."""
        if threading.get_ident() == self._ident:
            self._update_events(client)
            return
        with self._lock:
            self._write_wanted.add(client)
        self._wake()

    def __len__(self) -> int:
        return len(self._clients)

    def _call(self, request: Callable[[], None]) -> None:
        with self._lock:
            self._requests.append(request)
        self._wake()

    def _wake(self) -> None:
        with self._lock:
            if self._woken:
                return
            self._woken = True
        # Full (the loop is behind and will look anyway) or closed at stop: nothing to do.
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    # -- paho's socket callbacks -----------------------------------------------------------

    def _opened(self, connection: Connection, client: paho.Client, sock: Any) -> None:
        # Called from reconnect(), which only the loop thread calls.
        self._selector.register(sock, selectors.EVENT_READ, (connection, client))

    def _closed(self, sock: Any) -> None:
        if threading.get_ident() != self._ident:
            self._call(lambda: self._unregister(sock))
        else:
            self._unregister(sock)

    # -- the loop thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self._ident = threading.get_ident()
        next_misc = time.monotonic() + MISC_INTERVAL
        while not self._stopping.is_set():
            now = time.monotonic()
            timeout = min(next_misc, self._due[0][0] if self._due else next_misc) - now
            for key, mask in self._selector.select(max(timeout, 0.0)):
                if key.data is None:
                    self._drain_wake()
                    continue
                connection, client = key.data
                if mask & selectors.EVENT_READ:
                    self._step(connection, client, client.loop_read)
                if mask & selectors.EVENT_WRITE and client.socket() is not None:
                    self._step(connection, client, client.loop_write)
            self._handle_requests()
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + MISC_INTERVAL
                for connection, client in list(self._clients.items()):
                    if client.socket() is not None:
                        self._step(connection, client, client.loop_misc)
            self._connect_due(now)

    def _step(self, connection: Connection, client: paho.Client, operation: Any) -> None:
        try:
            rc = operation()
        except Exception:  # a paho or handler bug must not stop every other connection
            log.exception("%s: network step failed", connection.client_id)
            rc = MQTTErrorCode.MQTT_ERR_UNKNOWN
        if client.socket() is None or rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            if client.socket() is not None:
                self._unregister(client.socket())
            self._lost(connection)
        else:
            self._update_events(client)

    def _update_events(self, client: paho.Client) -> None:
        """Wait for the socket to be writable exactly while paho has packets queued."""
        sock = client.socket()
        if sock is not None:
            wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
            self._set_events(sock, wanted)

    def _lost(self, connection: Connection) -> None:
        connection.lost()
        if connection.stopping or connection in self._removing:
            self._release(connection)
        else:
            self._schedule(connection, connection.retry_delay())

    def _schedule(self, connection: Connection, delay: float) -> None:
        if connection not in self._scheduled:
            self._scheduled.add(connection)
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), connection))

    def _connect_due(self, now: float) -> None:
        for _ in range(CONNECTS_PER_PASS):
            if not self._due or self._due[0][0] > now:
                return
            _, _, connection = heapq.heappop(self._due)
            self._scheduled.discard(connection)
            if connection not in self._clients:  # released meanwhile
                continue
            if connection.stopping:
                self._release(connection)
            elif not connection.connect_once():
                self._schedule(connection, connection.retry_delay())

    def _remove(self, connection: Connection) -> None:
        client = self._clients.get(connection)
        if client is None or client.socket() is None:
            self._release(connection)
        else:
            self._removing.add(connection)  # released when paho closes the socket

    def _release(self, connection: Connection) -> None:
        self._removing.discard(connection)  # a pending entry in `_due` is skipped
        if self._clients.pop(connection, None) is not None:
            connection.released()

    def _handle_requests(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
            wanted, self._write_wanted = self._write_wanted, set()
        for client in wanted:
            self._update_events(client)
        for request in requests:
            request()

    def _drain_wake(self) -> None:
        # Drain first, then clear the flag: a wake-up sent in between stays for the next select.
        with contextlib.suppress(BlockingIOError):
            while self._wake_read.recv(4096):
                pass
        with self._lock:
            self._woken = False

    def _set_events(self, sock: Any, events: int) -> None:
        try:
            key = self._selector.get_key(sock)
        except (KeyError, ValueError):  # closed or already unregistered
            return
        if key.events != events:
            self._selector.modify(sock, events, key.data)

    def _unregister(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
