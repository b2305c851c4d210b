"""A thin MQTT connection over paho-mqtt 2.x with the fleet protocol's choices built in.

MQTT 3.1.1 only (so any broker works), QoS 1 everywhere, a persistent session (a stable client
id and `clean_session=False`, so the broker keeps subscriptions and queues QoS 1 messages while
the client is away), an optional last will, TLS and username/password. The connection runs its
own network thread, or, given a `loop.NetworkLoop`, shares that loop's one thread with many other
connections (the fleet simulator runs thousands so); either way it reconnects with exponential
backoff and full jitter (paho's built-in reconnect doubles its delay without jitter). Each
received payload is checked by `decode_inbound` before a handler sees it; a payload that fails is
logged and dropped, and a handler that raises is logged: neither ever stops the network thread.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from ..exceptions import MessageError
from .backoff import Backoff
from .inbound import Inbound, decode_inbound

if TYPE_CHECKING:
    from .loop import NetworkLoop

log = logging.getLogger(__name__)

QOS = 1
Handler = Callable[[Inbound], None]


@dataclass(frozen=True)
class Tls:
    """TLS options; `ca_file` None means the system's trusted CAs."""

    ca_file: str | None = None
    cert_file: str | None = None  # client certificate, for brokers that authenticate by it
    key_file: str | None = None


@dataclass(frozen=True)
class BrokerSettings:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: Tls | None = None
    keepalive: int = 30  # seconds; the broker declares the client gone after 1.5x this
    backoff_initial: float = 1.0
    backoff_max: float = 60.0


@dataclass(frozen=True)
class Will:
    """What the broker publishes (retained, QoS 1) when the client vanishes without saying so."""

    topic: str
    payload: bytes


class Connection:
    """One MQTT session: subscribe with handlers, publish at QoS 1, stop cleanly."""

    def __init__(
        self,
        client_id: str,
        settings: BrokerSettings,
        will: Will | None = None,
        loop: NetworkLoop | None = None,
    ) -> None:
        self.client_id = client_id
        self.settings = settings
        self.will = will
        self.loop = loop  # None: the connection runs its own network thread
        self.dropped = 0  # payloads that failed their checks
        self.unexpected = 0  # messages on no filter this connection subscribes to
        self._subscriptions: dict[str, list[Handler]] = {}
        self._given_up: set[str] = set()  # filters to unsubscribe from on every connection
        self._connect_listeners: list[Callable[[], None]] = []
        self._ready_listeners: list[Callable[[], None]] = []
        self._publish_listeners: list[Callable[[int], None]] = []
        # Ready: connected, and the broker acknowledged every subscription (SUBACK), so no
        # message published from now on can be missed. `_lock` guards `_pending_subscribes`
        # and `_subscriptions`.
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._pending_subscribes: set[int] = set()
        self._stopping = threading.Event()
        self._backoff = Backoff(settings.backoff_initial, settings.backoff_max)
        self._thread: threading.Thread | None = None
        self._started = False
        self._addressed = False
        self._stopped = threading.Event()  # set when the network side let go of the client
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        if self.settings.username is not None:
            client.username_pw_set(self.settings.username, self.settings.password)
        if self.settings.tls is not None:
            tls = self.settings.tls
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        if self.will is not None:
            client.will_set(self.will.topic, self.will.payload, qos=QOS, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_unexpected
        if self.loop is not None:
            self.loop.attach(self, client)
        return client

    # -- public ------------------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Handler) -> None:
        """Deliver checked payloads on `topic_filter` to `handler` (on the network thread), after
        the handlers that subscribed to it before.

        Subscriptions are renewed on every connection, so a broker that lost the session (a
        restart without persistence) still delivers."""
        with self._lock:
            handlers = self._subscriptions.get(topic_filter)
            if handlers is not None:
                handlers.append(handler)
                return
            self._subscriptions[topic_filter] = [handler]
        self._client.message_callback_add(topic_filter, self._dispatcher(topic_filter))
        if self._client.is_connected():
            self._subscribe([topic_filter])

    def give_up(self, topic_filter: str) -> None:
        """Unsubscribe from `topic_filter` on every connection: a subscription that an earlier
        version left in this persistent session would otherwise keep the broker sending it."""
        with self._lock:
            self._given_up.add(topic_filter)

    def remove_handler(self, topic_filter: str, handler: Handler) -> None:
        """Stop calling `handler` for `topic_filter`. The broker subscription stays: a device
        always wants its own topics, and the session keeps queueing for them."""
        with self._lock:
            handlers = self._subscriptions.get(topic_filter, [])
            if handler in handlers:
                handlers.remove(handler)

    def on_connected(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the network thread) after every successful connection."""
        self._connect_listeners.append(listener)

    def on_ready(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the network thread) each time the connection becomes ready:
        connected, and every subscription acknowledged, so nothing published to it from then on
        can be missed. It must not block."""
        self._ready_listeners.append(listener)

    def on_published(self, listener: Callable[[int], None]) -> None:
        """Call `listener(mid)` when the broker acknowledged a QoS 1 publish (PUBACK).

        It runs on the network thread while paho holds its message lock: it must not block or
        publish; hand the mid to another thread instead."""
        self._publish_listeners.append(listener)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> paho.MQTTMessageInfo:
        """Queue a QoS 1 publish. While disconnected paho keeps it and sends it on reconnect."""
        info = self._client.publish(topic, payload, qos=QOS, retain=retain)
        self._kick()
        return info

    def _kick(self) -> None:
        if self.loop is not None:
            self.loop.kick(self._client)

    def is_connected(self) -> bool:
        """Connected, with every subscription acknowledged by the broker."""
        return self._ready.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Wait until `is_connected`; False if `timeout` seconds passed first."""
        return self._ready.wait(timeout)

    def start(self) -> Connection:
        if self._started:
            raise RuntimeError("a connection can be started once only")
        self._started = True
        if self.loop is not None:
            self.loop.add(self)
            return self
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{self.client_id}", daemon=True
        )
        self._thread.start()
        return self

    def publish_will(self, timeout: float = 5.0) -> None:
        """Publish the last will now, as the broker would: a clean shutdown marks the device
        offline as a crash does. Waits up to `timeout` for the broker's acknowledgement."""
        if self.will is None or not self._ready.is_set():
            return
        info = self.publish(self.will.topic, self.will.payload, retain=True)
        # If the line dropped just now, the broker publishes the will itself.
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            info.wait_for_publish(timeout)

    def stop(self, timeout: float = 5.0, *, will: bool = True) -> None:
        """Disconnect cleanly; a stopped connection cannot be started again. A client with a
        will publishes it first (unless `will` is False: the caller already did)."""
        if not self._started or self._stopping.is_set():
            return
        if will:
            self.publish_will(timeout)
        self._stopping.set()
        self._client.disconnect()
        self._kick()
        if self.loop is not None:
            self.loop.remove(self)
            stopped = self._stopped.wait(timeout)
        else:
            assert self._thread is not None
            self._thread.join(timeout)
            stopped = not self._thread.is_alive()
        if not stopped:
            log.warning("%s: network side did not stop within %ss", self.client_id, timeout)
            return
        # paho closes its internal wake-up socket pair only in reinitialise() or when garbage
        # collected (which can be late, as the client and this object reference each other).
        self._client.reinitialise()

    def drop(self) -> None:
        """Close the socket without a word, as a device losing power does: the broker publishes
        the will once the keepalive runs out or it notices the closed socket. The connection
        then reconnects (with backoff) as after any lost connection."""
        sock = self._client.socket()
        if isinstance(sock, socket.socket):  # TLS sockets are socket.socket subclasses
            # shutdown, not close: the network side still owns the descriptor and sees the
            # end of the stream as a lost connection.
            sock.shutdown(socket.SHUT_RDWR)

    # -- for the network side (own thread or a shared NetworkLoop) ---------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def connect_once(self) -> bool:
        """One connection attempt (blocking for the TCP and TLS handshake only); False when it
        failed and the caller should retry after `retry_delay()`."""
        try:
            if not self._addressed:  # paho learns the address in connect() only
                self._client.connect(
                    self.settings.host, self.settings.port, self.settings.keepalive
                )
                self._addressed = True
            else:
                self._client.reconnect()
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError)
            # Log the text, not the exception: a log handler that keeps records would keep
            # its traceback, and with it the socket of a failed TLS handshake, which paho
            # leaves for the garbage collector to close.
            log.warning("%s: cannot connect to the broker: %s", self.client_id, str(exc))
            return False
        return True

    def retry_delay(self) -> float:
        return self._backoff.next_delay()

    def lost(self) -> None:
        """The network side saw the connection end."""
        self._ready.clear()

    def released(self) -> None:
        """The network side will not touch the client again (after `stop`)."""
        self._stopped.set()

    def __enter__(self) -> Connection:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- network thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.connect_once():
                self._serve()
            if not self._stopping.is_set():
                self._stopping.wait(self.retry_delay())
        self.released()

    def _serve(self) -> None:
        """Run paho's loop until the connection is gone (or stop() disconnected it)."""
        while self._client.loop(timeout=0.5) == MQTTErrorCode.MQTT_ERR_SUCCESS:
            pass
        self.lost()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, _: Any
    ) -> None:
        if reason.is_failure:
            log.warning("%s: broker refused the connection: %s", self.client_id, reason)
            return
        self._backoff.reset()
        with self._lock:
            topic_filters = list(self._subscriptions)
            given_up = list(self._given_up)
        if given_up:
            client.unsubscribe(given_up)  # before the SUBSCRIBE: ready means it is gone too
        if topic_filters:
            self._subscribe(topic_filters)
        else:
            self._became_ready()
        for listener in self._connect_listeners:
            self._guarded(listener)

    def _became_ready(self) -> None:
        self._ready.set()
        for listener in self._ready_listeners:
            self._guarded(listener)

    def _subscribe(self, topic_filters: list[str]) -> None:
        with self._lock:
            self._ready.clear()
            _, mid = self._client.subscribe([(f, QOS) for f in topic_filters])
            if mid is not None:  # None only when paho refused the call outright (not connected)
                self._pending_subscribes.add(mid)
        self._kick()

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, _: Any
    ) -> None:
        refused = [reason for reason in reasons if reason.is_failure]
        if refused:
            log.warning("%s: broker refused a subscription: %s", self.client_id, refused)
        with self._lock:
            self._pending_subscribes.discard(mid)
            ready = not self._pending_subscribes and client.is_connected()
        if ready:
            self._became_ready()

    def _on_unexpected(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.unexpected += 1

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, _: Any
    ) -> None:
        with self._lock:
            self._ready.clear()
            self._pending_subscribes.clear()
        if not self._stopping.is_set():
            log.warning("%s: disconnected from the broker: %s", self.client_id, reason)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: Any, _: Any
    ) -> None:
        for listener in self._publish_listeners:
            self._guarded(listener, mid)

    def _dispatcher(self, topic_filter: str) -> paho.CallbackOnMessage:
        def dispatch(client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
            try:
                inbound = decode_inbound(message.topic, bytes(message.payload))
            except MessageError as exc:
                self.dropped += 1
                log.warning("%s: dropped a message: %s", self.client_id, exc)
                return
            with self._lock:  # a copy: handlers may come and go while these run
                handlers = list(self._subscriptions[topic_filter])
            for handler in handlers:
                self._guarded(handler, inbound)

        return dispatch

    def _guarded(self, function: Callable[..., None], *args: Any) -> None:
        """Run a user callback; its failure is logged, never allowed to kill the network thread."""
        try:
            function(*args)
        except Exception:
            log.exception("%s: a message handler failed", self.client_id)
