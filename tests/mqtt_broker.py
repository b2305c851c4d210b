"""A real Mosquitto for the transport tests, on a free loopback port, with users and the ACL;
and the embedded broker (`edgewise.broker`) in the same shape, so tests can run against both.

Each test gets its own broker process (it starts in well under a second) so that tests which
stop and restart it cannot disturb others. The password file is made once per session with
`mosquitto_passwd` (hashing is the slow part); the ACL is the one `edgewise.transport.acl`
generates, so the tests check the ACL that deployments use.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgewise.transport import BrokerSettings, Connection, Inbound, Tls, Will
from edgewise.transport.acl import CONTROL_USER, mosquitto_acl

DEVICES = ("dev-a", "dev-b")
START_TIMEOUT = 15.0  # seconds for Mosquitto to listen, on a loaded machine
STOP_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 15.0  # seconds for a message to arrive; generous for a loaded 2-core machine


def find_binary(name: str) -> str:
    """A Mosquitto program, or a failed test: the suite promises a real broker, so no skip."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail(
            f"{name} not found: run `make system-deps` (tests/system_deps.sh, Debian's "
            "`mosquitto` package)."
        )
    return found


@dataclass(frozen=True)
class Credentials:
    password_file: Path
    passwords: dict[str, str]  # username -> password


def make_credentials(directory: Path, devices: Sequence[str] = DEVICES) -> Credentials:
    passwords = {user: secrets.token_urlsafe(16) for user in (CONTROL_USER, *devices)}
    password_file = directory / "passwords"
    password_file.touch(mode=0o600)
    tool = find_binary("mosquitto_passwd")
    for user, password in passwords.items():
        subprocess.run(
            [tool, "-b", str(password_file), user, password],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return Credentials(password_file, passwords)


@dataclass(frozen=True)
class Certificates:
    ca: Path  # the CA that signed the server certificate: what clients must trust
    server_cert: Path
    server_key: Path


def make_certificates(directory: Path) -> Certificates:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (openssl CLI, EC P-256)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, request = (
        directory / "server.crt",
        directory / "server.key",
        directory / "server.csr",
    )
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for command in (
        [
            "req",
            "-x509",
            *new_key,
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=edgewise test CA",
        ],
        [
            "req",
            *new_key,
            "-keyout",
            key,
            "-out",
            request,
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        [
            "x509",
            "-req",
            "-in",
            request,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-copy_extensions",
            "copy",
        ],
    ):
        subprocess.run(
            [find_binary("openssl"), *map(str, command)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    return Certificates(ca, cert, key)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Endpoint:
    """What clients need to reach a test broker: its port, credentials and certificates."""

    def __init__(
        self, directory: Path, credentials: Credentials, certificates: Certificates | None = None
    ) -> None:
        self.directory = directory
        self.credentials = credentials
        self.certificates = certificates
        self.port = free_port()

    def settings(self, user: str) -> BrokerSettings:
        # Short reconnect delays: tests restart the broker and should not wait a minute.
        return BrokerSettings(
            host="127.0.0.1",
            port=self.port,
            username=user,
            password=self.credentials.passwords[user],
            keepalive=10,
            backoff_initial=0.2,
            backoff_max=1.0,
            tls=None if self.certificates is None else Tls(ca_file=str(self.certificates.ca)),
        )


class Broker(_Endpoint):
    """One Mosquitto process; `stop` and `start` again keep the port and persisted sessions."""

    def __init__(
        self, directory: Path, credentials: Credentials, certificates: Certificates | None = None
    ) -> None:
        super().__init__(directory, credentials, certificates)
        self.log = directory / "mosquitto.log"
        self.config = directory / "mosquitto.conf"
        acl = directory / "acl"
        acl.write_text(mosquitto_acl())
        (directory / "data").mkdir()
        tls = (
            []
            if certificates is None
            else [
                f"cafile {certificates.ca}",
                f"certfile {certificates.server_cert}",
                f"keyfile {certificates.server_key}",
            ]
        )
        self.config.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    *tls,
                    "allow_anonymous false",
                    f"password_file {credentials.password_file}",
                    f"acl_file {acl}",
                    # Sessions and queued QoS 1 messages survive a broker restart.
                    "persistence true",
                    f"persistence_location {directory / 'data'}/",
                    f"log_dest file {self.log}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    # Run as whoever runs the tests: as root, Mosquitto would otherwise switch
                    # to the `mosquitto` user, which cannot read this directory.
                    f"user {getpass.getuser()}",
                    "",
                ]
            )
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self._process is None, "broker already running"
        self._process = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _, err = self._process.communicate()
                self._process = None
                pytest.fail(f"mosquitto exited at start: {err.decode()}\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)  # polling a port that is not open yet: nothing to wait on
        self.stop()
        pytest.fail(f"mosquitto did not listen on {self.port} within {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: Mosquitto saves its persistence file), bounded."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:  # communicate, not wait: it also closes the stderr pipe
            self._process.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate(timeout=STOP_TIMEOUT)
        self._process = None

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


class EmbeddedMqttBroker(_Endpoint):
    """The embedded broker in this process, with the same users (Mosquitto's password file)
    and the fleet ACL. `stop` and `start` again keep the port and the retained messages (in a
    file); sessions live in memory, so a restart loses them."""

    def __init__(
        self, directory: Path, credentials: Credentials, certificates: Certificates | None = None
    ) -> None:
        super().__init__(directory, credentials, certificates)
        self._broker: Any = None  # an EmbeddedBroker while running

    def start(self) -> None:
        # Imported here: amqtt is not worth loading for the test runs that never use it.
        from edgewise.broker import EmbeddedBroker, ServerTls

        assert self._broker is None, "broker already running"
        tls = self.certificates
        self._broker = EmbeddedBroker(
            "127.0.0.1",
            self.port,
            password_file=self.credentials.password_file,
            tls=None if tls is None else ServerTls(tls.server_cert, tls.server_key),
            retained_file=self.directory / "retained.db",
        ).start(START_TIMEOUT)

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop(STOP_TIMEOUT)
            self._broker = None

    def log_text(self) -> str:
        return ""  # it logs through `logging`, which pytest shows for a failed test


AnyBroker = Broker | EmbeddedMqttBroker
BROKER_KINDS = {"mosquitto": Broker, "embedded": EmbeddedMqttBroker}


@pytest.fixture(scope="session")
def broker_credentials(tmp_path_factory: pytest.TempPathFactory) -> Credentials:
    return make_credentials(tmp_path_factory.mktemp("mqtt-credentials"))


def running_broker(
    factory: pytest.TempPathFactory,
    credentials: Credentials,
    certificates: Certificates | None,
    kind: str = "mosquitto",
) -> Iterator[AnyBroker]:
    directory = factory.mktemp(kind)
    os.chmod(directory, 0o700)
    server = BROKER_KINDS[kind](directory, credentials, certificates)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(
    tmp_path_factory: pytest.TempPathFactory, broker_credentials: Credentials
) -> Iterator[AnyBroker]:
    yield from running_broker(tmp_path_factory, broker_credentials, None)


@pytest.fixture
def embedded_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_credentials: Credentials
) -> Iterator[AnyBroker]:
    yield from running_broker(tmp_path_factory, broker_credentials, None, "embedded")


@pytest.fixture(params=list(BROKER_KINDS))
def any_broker(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    broker_credentials: Credentials,
) -> Iterator[AnyBroker]:
    """Mosquitto, then the embedded broker. A test module runs its `broker` tests against both
    by overriding `broker` with this one."""
    yield from running_broker(tmp_path_factory, broker_credentials, None, request.param)


@pytest.fixture
def tls_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_credentials: Credentials
) -> Iterator[AnyBroker]:
    """A broker that speaks MQTT over TLS only, with a certificate from a throwaway CA."""
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    yield from running_broker(tmp_path_factory, broker_credentials, certificates)


class Collector:
    """A handler that records what arrives, and lets a test wait for it with a timeout."""

    def __init__(self) -> None:
        self.received: list[Inbound] = []
        self._condition = threading.Condition()

    def __call__(self, inbound: Inbound) -> None:
        with self._condition:
            self.received.append(inbound)
            self._condition.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Inbound]], bool], timeout: float = DELIVERY_TIMEOUT
    ) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self.received), timeout)

    def topics(self) -> list[str]:
        with self._condition:
            return [inbound.topic for inbound in self.received]


Connect = Callable[..., Connection]


@pytest.fixture
def connect(broker: AnyBroker) -> Iterator[Connect]:
    """Start a connection as `user` (client id = user unless given), subscribed to
    `subscriptions` (filter -> handler) before it connects; stopped at teardown."""
    started: list[Connection] = []

    def start(
        user: str,
        subscriptions: dict[str, Callable[[Inbound], None]] | None = None,
        client_id: str | None = None,
        will: Will | None = None,
    ) -> Connection:
        connection = Connection(client_id or user, broker.settings(user), will=will)
        for topic_filter, handler in (subscriptions or {}).items():
            connection.subscribe(topic_filter, handler)
        started.append(connection.start())
        assert connection.wait_connected(DELIVERY_TIMEOUT), f"{user} did not connect"
        return connection

    yield start
    for connection in started:
        connection.stop()
