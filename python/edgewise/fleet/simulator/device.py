"""One simulated device: on the wire it is the agent (`agent/daemon.py`), in a few objects.

It connects as its own MQTT user (the broker's ACL applies), keeps a retained `state` with a
last will that says offline, takes only commands signed by an operator key of its trusted root
with a sequence above the last it accepted (the agent's `CommandVerifier`), downloads a bundle
chunk by chunk with the agent's transfer protocol, verifies it through python-tuf and the
signed length and hash of the target, installs it into A/B slots with the agent's `Installer`
and health check, can roll back, and reports events with the agent's names and details.

Simplified compared with a real device (the rest is the same code):
- slots, the command sequence, accepted versions and downloads live in memory, not in files,
  so a restart of the simulator starts every device empty;
- events and state go straight to paho (QoS 1, queued while offline) instead of the SQLite
  outbox, so they do not survive a restart of the simulator;
- shared per process, by exact bytes: the verified TUF metadata, bundle bytes, health check
  (see `shared.py` for why that leaves each device's own checks intact);
- no local HTTP inference server: rows come from the telemetry `Traffic` instead.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Any

from ...agent.commands import Command, CommandVerifier, SequenceInMemory
from ...agent.health import check_health
from ...agent.install import Installer
from ...agent.slots import SlotRecord
from ...agent.tuf_inbox import MetadataInbox
from ...exceptions import CommandError, EdgewiseError, TrustError
from ...transport.client import BrokerSettings, Connection, Will
from ...transport.frames import Chunk
from ...transport.inbound import Inbound
from ...transport.messages import BundleRef, Event, Level, SlotStatus, State, Status, encode
from ...transport.topics import TUF_ROLES, Kind, device_topic
from ...trust.accepted import AcceptedInMemory
from .context import DeviceContext
from .shared import VerifiedMetadata
from .slots import MemorySlots
from .transfer import PacedDownload

if TYPE_CHECKING:
    from tuf.api.metadata import Root

    from ...model import Model

log = logging.getLogger(__name__)


class SimulatedDevice:
    def __init__(
        self,
        device: str,
        settings: BrokerSettings,
        labels: dict[str, str],
        context: DeviceContext,
    ) -> None:
        self.device = device
        self.labels = labels
        self.context = context
        self.slots = MemorySlots(context.scratch)
        self.accepted = AcceptedInMemory(device)
        self.verifier = CommandVerifier(device, SequenceInMemory(), self._trusted_root)
        self.model: Model | None = None  # what serves now (shared per bundle digest)
        self.download: PacedDownload | None = None
        self._metadata: VerifiedMetadata | None = None
        self._trusted_versions: dict[str, int] = {}
        self._commands: collections.deque[bytes] = collections.deque()
        self._busy = False  # a worker is handling this device's commands
        self._lock = threading.Lock()
        offline = State(status=Status.OFFLINE, reason="connection lost", labels=labels)
        will = Will(self.topic(Kind.STATE), encode(offline))
        self.connection = Connection(device, settings, will=will, loop=context.loop)
        self.inbox = MetadataInbox(self.connection)
        self.connection.subscribe(self.topic(Kind.CMD), self._on_command)
        self.connection.subscribe(self.topic(Kind.XFER), self._on_xfer)
        self.connection.on_ready(self.publish_state)

    def topic(self, kind: Kind) -> str:
        return device_topic(self.device, kind)

    def start(self) -> SimulatedDevice:
        self.connection.start()
        return self

    @property
    def active(self) -> BundleRef | None:
        return self.slots.load().active_bundle

    # -- reporting -----------------------------------------------------------------------------

    def event(self, name: str, level: Level = Level.INFO, **detail: Any) -> None:
        message = Event(name=name, level=level, detail=detail)
        self.connection.publish(self.topic(Kind.EVENTS), encode(message))

    def publish_state(self) -> None:
        """The retained state: what the slots say (also the heartbeat)."""
        table = self.slots.load()
        failed = [r.reason for r in table.slots.values() if r.reason]
        state = State(
            labels=self.labels,
            status=Status.ONLINE,
            active=table.active_bundle,
            slots=table.to_state(),
            reason="; ".join(failed)[:1024] or None,
        )
        self.connection.publish(self.topic(Kind.STATE), encode(state), retain=True)

    # -- commands: one at a time per device, on the shared workers ----------------------------

    def _on_command(self, inbound: Inbound) -> None:
        # Network loop: hand over only.
        if not isinstance(inbound.body, bytes):
            return
        with self._lock:
            self._commands.append(inbound.body)
            if self._busy:
                return
            self._busy = True
        self.context.workers.submit(self._drain)

    def _drain(self) -> None:
        """Handle queued commands in order until one starts a download (whose end resumes
        draining) or none is left."""
        while True:
            with self._lock:
                if not self._commands:
                    self._busy = False
                    return
                data = self._commands.popleft()
            try:
                if self._handle(data):
                    return
            except Exception:  # a bug must not leave the device deaf to commands
                log.exception("%s: command handling failed", self.device)

    def _handle(self, data: bytes) -> bool:
        """Act on one command; True when an install's download is under way."""
        try:
            command = self.verifier.accept(data)
        except CommandError as exc:
            self.context.counters.add(commands_rejected=1)
            self.event("command.rejected", Level.WARNING, reason=str(exc))
            return False
        self.event("command.accepted", seq=command.seq, action=command.action)
        if command.action == "rollback":
            self._rollback()
            return False
        return self._begin_install(command)

    def _rollback(self) -> None:
        installer = Installer(self.slots, _no_verify, self.context.health)
        try:
            table = installer.rollback()
        except EdgewiseError as exc:
            self.event("rollback.failed", Level.ERROR, reason=str(exc))
            return
        active = table.active_bundle
        self.model = None if active is None else self.context.bundles.model(active)
        self.publish_state()
        self.context.counters.add(rollbacks=1)
        self.event("rollback.done", active=_describe(active, table.active))

    # -- install ------------------------------------------------------------------------------

    def _begin_install(self, command: Command) -> bool:
        assert command.bundle_name is not None and command.bundle_version is not None
        name, version = command.bundle_name, command.bundle_version
        active = self.active
        if active is not None and (active.name, active.version) == (name, version):
            self.event("install.done", bundle=name, version=version, already_active=True)
            return False
        self.event("install.started", bundle=name, version=version)
        try:
            metadata = self._verified_metadata()
            info, _ = metadata.client.lookup(name, version)
            bundle = BundleRef(name, version, info.hashes["sha256"], info.length)
            installer = Installer(
                self.slots, self._verify_for(metadata, bundle), self._check_for(bundle)
            )
            installer.mark(bundle)
        except EdgewiseError as exc:
            self._install_failed(name, version, str(exc))
            return False
        self.publish_state()
        context = self.context
        self.download = PacedDownload(
            self.connection,
            self.device,
            bundle,
            chunk_size=context.chunk_size,
            window=context.window,
            request_timeout=context.request_timeout,
            timeout=context.transfer_timeout,
            on_end=lambda download, failure: context.workers.submit(
                self._finish_install, download, installer, failure
            ),
        )
        self.download.start()
        return True

    def _finish_install(
        self, download: PacedDownload, installer: Installer[bytes], failure: str | None
    ) -> None:
        bundle = download.progress.bundle
        self.context.counters.add(bytes_received=download.bytes_received)
        download.bytes_received = 0
        try:
            if failure is not None:
                raise EdgewiseError(failure)
            data = download.progress.assemble(f"{self.device}: {bundle.name}-{bundle.version}")
            # Own bytes checked (length and SHA-256) by assemble: now share the one copy.
            installed = installer.install(self.context.bundles.intern(data, bundle), bundle)
        except EdgewiseError as exc:
            if failure is None and not download.progress.received:  # reset after a mismatch
                download.restart()
                return
            self._abandon(bundle, str(exc))
            self._install_failed(bundle.name, bundle.version, str(exc))
        else:
            self.accepted.record(bundle.name, bundle.version)
            self.model = installed.model
            self.publish_state()
            self.context.counters.add(installs_done=1)
            self.event(
                "install.done",
                bundle=bundle.name,
                version=bundle.version,
                slot=installed.slot,
                health=installed.health.to_json(),
            )
        self.download = None
        self._drain()

    def _install_failed(self, name: str, version: int, reason: str) -> None:
        self.publish_state()
        self.context.counters.add(installs_failed=1)
        self.event("install.failed", Level.ERROR, bundle=name, version=version, reason=reason)

    def _abandon(self, bundle: BundleRef, reason: str) -> None:
        """A download that failed leaves its slot failed (an install that failed already did)."""
        table = self.slots.load()
        slot = table.inactive()
        if table.slots[slot].status is SlotStatus.DOWNLOADING:
            self.slots.save(table.with_slot(slot, SlotRecord(SlotStatus.FAILED, bundle, reason)))
            self.slots.clear(slot)

    def _on_xfer(self, inbound: Inbound) -> None:
        download = self.download
        if download is not None and isinstance(inbound.body, Chunk):
            download.offer(inbound.body)

    # -- trust --------------------------------------------------------------------------------

    def _verified_metadata(self) -> VerifiedMetadata:
        """python-tuf's verdict on the documents this device's broker delivered, refused when
        any role is older than what this device trusted before (TUF's rollback protection)."""
        for role in TUF_ROLES:  # the retained documents arrive just after connecting
            if self.inbox.get(role, self.context.metadata_wait) is None:
                raise TrustError(f"{self.device}: no {role} metadata retained on the broker")
        metadata = self.context.trust.verify(self.inbox.snapshot())
        for role, version in metadata.versions.items():
            trusted = self._trusted_versions.get(role, 0)
            if version < trusted:
                raise TrustError(
                    f"rollback refused: {role} metadata version {version} is older than "
                    f"version {trusted}, which {self.device} trusted before"
                )
        self._trusted_versions.update(metadata.versions)
        self._metadata = metadata
        return metadata

    def _trusted_root(self) -> Root:
        """The newest root this device verified (or the pinned one): its operator keys sign
        commands."""
        metadata = self._metadata
        return self.context.trust.pinned if metadata is None else metadata.root

    def _verify_for(self, metadata: VerifiedMetadata, bundle: BundleRef) -> Any:
        """Verify this device's own bytes against the signed target (length, hashes, name,
        version) and against the versions this device accepted before."""

        def verify(data: bytes) -> Any:
            return metadata.client.verify_bytes(
                data,
                (bundle.name, bundle.version),
                f"{self.device}: {bundle.name}-{bundle.version}",
                record=False,
                accepted=self.accepted,
            )

        return verify

    def _check_for(self, bundle: BundleRef) -> Any:
        context = self.context
        return lambda verified: context.bundles.health(
            bundle, verified, lambda b: check_health(b, context.health, context.scratch)
        )


def _no_verify(data: bytes) -> Any:
    raise TrustError("a rollback verifies nothing new")  # Installer.rollback never calls it


def _describe(bundle: BundleRef | None, slot: str | None) -> str | None:
    return None if bundle is None else f"{bundle.name}-{bundle.version} (slot {slot})"
