"""The long-lived agent process: `edgewise agent run`.

Threads, each with one job:

- paho's network thread (in `Connection`): receives commands, TUF metadata and chunks, and
  only hands them over;
- the command worker: checks commands one at a time, then downloads, verifies and installs, or
  rolls back; an install interrupted by a crash is resumed from ``pending-install.json``;
- the outbox publisher: drains events (and telemetry) from SQLite at QoS 1;
- the main thread: waits for SIGTERM or SIGINT and shuts everything down in order.

The retained ``state`` message is published on every connection and after every change, and it
always says what the pointer file on disk says, so the fleet sees what the device really runs.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..bundle import Bundle
from ..exceptions import CommandError, ConfigError, EdgewiseError, InstallError, OutboxFullError
from ..transport.client import Connection, Will
from ..transport.download import BundleDownload
from ..transport.inbound import Inbound
from ..transport.messages import BundleRef, Event, Level, Message, State, Status, encode
from ..transport.outbox import Outbox, OutboxPublisher
from ..transport.progress import TransferProgress
from ..transport.topics import Kind, device_topic
from .commands import Command, CommandVerifier, parse_payload
from .config import AgentConfig
from .crashpoints import crash_point
from .durable import replace_durably
from .health import load_model
from .install import Installer
from .server import InferenceServer
from .serving import Serving
from .slots import SlotStore, SlotTable
from .telemetry import TelemetryWindows
from .tuf_inbox import MetadataInbox

if TYPE_CHECKING:
    from tuf.api.metadata import Root

    from ..model import Model
    from ..trust import TrustClient

log = logging.getLogger("edgewise.agent")

PENDING_FILE = "pending-install.json"
DOWNLOADS_DIR = "downloads"
TRUST_DIR = "trust"
SHUTDOWN_FLUSH = 5.0  # seconds to let the outbox drain on a clean stop


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.device = config.device_id
        state = config.state_dir
        state.mkdir(parents=True, exist_ok=True)
        self.store = SlotStore(state)
        self.serving = Serving()
        self.pending_path = state / PENDING_FILE
        self.stopping = threading.Event()
        self._commands: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._download: BundleDownload | None = None
        self._state_lock = threading.Lock()
        self._table = SlotTable()
        self._pinned_root = _read_root(config.trust_root)
        self.verifier = CommandVerifier(self.device, state, self._trusted_root)
        self.outbox = Outbox(state / "outbox.db")
        offline = State(status=Status.OFFLINE, reason="connection lost")
        will = Will(self.topic(Kind.STATE), encode(offline))
        self.connection = Connection(self.device, config.broker, will=will)
        self.publisher = OutboxPublisher(self.outbox, self.connection)
        self.telemetry = TelemetryWindows(
            config.telemetry_window, lambda m: self._queue(Kind.TELEMETRY, m)
        )
        self.server: InferenceServer | None = None
        self.inbox = MetadataInbox(self.connection)
        self.connection.subscribe(self.topic(Kind.CMD), self._on_command)
        self._announce = threading.Event()
        self.connection.on_connected(self._announce.set)
        self._worker = threading.Thread(target=self._work, name="agent-commands", daemon=True)
        self._reporter = threading.Thread(target=self._report, name="agent-state", daemon=True)

    def topic(self, kind: Kind) -> str:
        return device_topic(self.device, kind)

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> Agent:
        table, repairs = self.store.recover()
        for repair in repairs:
            self.event("slots.repaired", Level.WARNING, repair=repair)
        self._serve(table)
        self.telemetry.start()
        if self.config.server_port >= 0:  # up before the device announces itself online
            self.server = InferenceServer(
                self.config.server_port,
                self.serving,
                self.telemetry,
                self.config.max_rows,
                self.config.state_dir,
            ).start()
        self.publisher.start()
        self.connection.start()
        self._worker.start()
        self._reporter.start()
        log.info("agent started", extra={"device": self.device, "active": _describe(table)})
        return self

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.start()
        self.stopping.wait()
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self._announce.set()  # wakes the reporter, which otherwise sleeps a whole window
        download = self._download
        if download is not None:
            download.cancel()
        if self.server is not None:
            self.server.stop()
        self._worker.join(timeout=10)
        self._reporter.join(timeout=10)
        self.telemetry.stop()  # queues the last, partial window
        self.publisher.wait_empty(SHUTDOWN_FLUSH)
        self.publisher.stop()
        self.connection.stop()  # publishes the offline state, as the last will would
        self.outbox.close()
        log.info("agent stopped")

    # -- reporting ---------------------------------------------------------------------------

    def event(self, name: str, level: Level = Level.INFO, **detail: Any) -> None:
        """Log the event and queue it durably for the control plane."""
        log.log(_LOG_LEVELS[level], name, extra=detail)
        self._queue(Kind.EVENTS, Event(name=name, level=level, detail=detail))

    def _queue(self, kind: Kind, message: Message) -> None:
        try:
            self.publisher.send(self.topic(kind), message)
        except OutboxFullError as exc:
            # Months without a broker: the agent keeps serving; the log still has it.
            log.error("not queued: %s", exc, extra={"kind": message.TYPE})

    def publish_state(self) -> None:
        """The retained state: what the pointer on disk says. Also the heartbeat."""
        with self._state_lock:
            table = self._table
        failed = [r.reason for r in table.slots.values() if r.reason]
        state = State(
            labels=self.config.labels,
            status=Status.ONLINE,
            active=table.active_bundle,
            slots=table.to_state(),
            reason="; ".join(failed)[:1024] or None,
        )
        self.connection.publish(self.topic(Kind.STATE), encode(state), retain=True)

    def _report(self) -> None:
        """Announce the state once each connection is ready (subscriptions acknowledged, so a
        command sent in answer cannot be missed), and again every window as a heartbeat."""
        while not self.stopping.is_set():
            self._announce.wait(self.config.telemetry_window)
            self._announce.clear()
            if not self.stopping.is_set() and self.connection.wait_connected(1.0):
                self.publish_state()

    def _serve(self, table: SlotTable) -> None:
        """Serve the active slot of `table` and report the change."""
        model = None
        if table.active is not None and table.active_bundle is not None:
            model = _load_model(self.store.bundle_path(table.active))
        self.serving.swap(model, table.active_bundle)
        self._set_table(table)

    def _set_table(self, table: SlotTable) -> None:
        with self._state_lock:
            self._table = table
        if self.connection.is_connected():
            self.publish_state()

    # -- commands ----------------------------------------------------------------------------

    def _on_command(self, inbound: Inbound) -> None:
        # Network thread: hand over only; checking and acting happen on the worker.
        if isinstance(inbound.body, bytes):
            self._commands.put(inbound.body)

    def _work(self) -> None:
        pending = self._pending()
        if pending is not None:
            self.event(
                "install.resumed", bundle=pending.bundle_name, version=pending.bundle_version
            )
            self._install(pending)
        while not self.stopping.is_set():
            try:
                data = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        try:
            command = self.verifier.accept(data)
        except CommandError as exc:
            self.event("command.rejected", Level.WARNING, reason=str(exc))
            return
        self.event("command.accepted", seq=command.seq, action=command.action)
        if command.action == "rollback":
            self._rollback()
        else:
            replace_durably(self.pending_path, json.dumps(command.to_payload()).encode())
            self._install(command)

    def _rollback(self) -> None:
        try:
            table = self._installer(None).rollback()
            self._serve(table)
        except EdgewiseError as exc:
            self.event("rollback.failed", Level.ERROR, reason=str(exc))
            return
        self.event("rollback.done", active=_describe(table))

    def _install(self, command: Command) -> None:
        assert command.bundle_name is not None and command.bundle_version is not None
        name, version = command.bundle_name, command.bundle_version
        active = self.store.load().active_bundle
        if active is not None and (active.name, active.version) == (name, version):
            # Asked twice, or the process died after the switch but before it said so.
            self._trust_client().accepted.record(name, version)
            self.pending_path.unlink(missing_ok=True)
            self.event("install.done", bundle=name, version=version, already_active=True)
            return
        self.event("install.started", bundle=name, version=version)
        try:
            client = self._trust_client()
            info, _ = client.lookup(name, version)
            bundle = BundleRef(name, version, info.hashes["sha256"], info.length)
            installer = self._installer(client)
            self._set_table(installer.mark(bundle))
            downloaded = self._fetch(bundle)
            installed = installer.install(downloaded, bundle)
        except EdgewiseError as exc:
            self._set_table(self.store.load())
            if not self.stopping.is_set():  # a shutdown resumes the install at the next start
                self.pending_path.unlink(missing_ok=True)
                self.event(
                    "install.failed", Level.ERROR, bundle=name, version=version, reason=str(exc)
                )
            return
        client.accepted.record(name, version)
        self.serving.swap(installed.model, bundle)
        self._set_table(installed.table)
        self.pending_path.unlink(missing_ok=True)
        shutil.rmtree(self.config.state_dir / DOWNLOADS_DIR, ignore_errors=True)
        self.event(
            "install.done",
            bundle=name,
            version=version,
            slot=installed.slot,
            health=installed.health.to_json(),
        )

    def _fetch(self, bundle: BundleRef) -> Path:
        directory = self.config.state_dir / DOWNLOADS_DIR / bundle.sha256[:16]
        with TransferProgress.open(directory, bundle, self.config.chunk_size) as progress:
            download = BundleDownload(
                self.connection,
                self.device,
                progress,
                window=self.config.window,
                request_timeout=self.config.request_timeout,
                on_progress=lambda received, total: crash_point("download.chunk"),
            )
            self._download = download
            try:
                with download:
                    if self.stopping.is_set():
                        download.cancel()
                    return download.run(self.config.transfer_timeout, "bundle.ewb")
            finally:
                self._download = None

    def _installer(self, client: TrustClient | None) -> Installer:
        def verify(path: Path) -> Any:
            if client is None:
                raise InstallError("no trust client to verify with")
            return client.verify_file(
                path, name=self.config.bundle_name, hardware=self.config.hardware, record=False
            )

        return Installer(self.store, verify, self.config.health)

    def _pending(self) -> Command | None:
        """The install a previous run accepted but did not finish (it died or was stopped)."""
        if not self.pending_path.exists():
            shutil.rmtree(self.config.state_dir / DOWNLOADS_DIR, ignore_errors=True)
            return None
        return parse_payload(self.pending_path.read_text())

    # -- trust -------------------------------------------------------------------------------

    def _trust_client(self) -> TrustClient:
        """A client that refreshes from the retained metadata (python-tuf loads only now)."""
        from ..trust import TrustClient
        from .tuf_fetcher import BASE_URL, InboxFetcher

        fetcher = InboxFetcher(self.inbox, self.config.request_timeout)
        return TrustClient(
            self._pinned_root,
            self.config.state_dir / TRUST_DIR,
            fetcher,
            BASE_URL,
            source="the TUF metadata retained on the broker",
        )

    def _trusted_root(self) -> Root:
        """The newest root this device verified (or the pinned one): its operator keys sign
        commands."""
        from tuf.api.metadata import Metadata, Root

        verified = self.config.state_dir / TRUST_DIR / "root.json"
        data = verified.read_bytes() if verified.exists() else self._pinned_root
        return Metadata[Root].from_bytes(data).signed


_LOG_LEVELS = {Level.INFO: logging.INFO, Level.WARNING: logging.WARNING, Level.ERROR: logging.ERROR}


def _read_root(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pinned trust root: {exc.strerror}") from exc


def _load_model(path: Path) -> Model:
    return load_model(Bundle.read(path))


def _describe(table: SlotTable) -> str | None:
    bundle = table.active_bundle
    return None if bundle is None else f"{bundle.name}-{bundle.version} (slot {table.active})"
