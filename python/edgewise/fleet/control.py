"""The minimal control side: serve a TUF repository's metadata and bundles over MQTT and send
operator-signed commands.

It connects as the control user and

- publishes the current root, timestamp, snapshot and targets metadata of a repository
  directory, retained, on ``edgewise/v1/tuf/{role}``, and every root version on
  ``edgewise/v1/tuf/root/{version}`` (devices verify them with python-tuf);
- answers devices' chunk requests from the repository's ``targets/`` directory (the transport's
  stateless `ChunkServer`);
- signs commands with an operator key and publishes them on a device's ``cmd`` topic.

It keeps no state of its own: the repository directory is the truth about bundles, and devices
report theirs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..agent.commands import Command, sign_command
from ..transport.client import Connection
from ..transport.messages import BundleRef
from ..transport.sender import ChunkServer
from ..transport.topics import TUF_ROLES, Kind, device_topic, tuf_root_topic, tuf_topic
from ..trust.targets import target_path

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

PUBLISH_TIMEOUT = 15.0  # seconds for the broker to acknowledge a retained document


class ControlSide:
    def __init__(self, connection: Connection, repository: Path, operator: Signer) -> None:
        self.connection = connection
        self.repository = repository
        self.operator = operator
        self.chunks = ChunkServer(connection, self.bundle_file)

    def start(self) -> ControlSide:
        self.chunks.start()
        return self

    def bundle_file(self, bundle: BundleRef) -> Path | None:
        """The repository's file of `bundle` (targets are stored under their SHA-256)."""
        path = (
            self.repository
            / "targets"
            / f"{bundle.sha256}.{target_path(bundle.name, bundle.version)}"
        )
        return path if path.is_file() else None

    def publish_metadata(self) -> None:
        """Publish each role's current metadata and every root version, retained, and wait for
        the broker to have them."""
        metadata = self.repository / "metadata"
        documents = [(tuf_topic(role), metadata / f"{role}.json") for role in TUF_ROLES]
        for path in metadata.glob("*.root.json"):
            version = path.name.removesuffix(".root.json")
            if version.isdigit():
                documents.append((tuf_root_topic(int(version)), path))
        for topic, path in documents:
            info = self.connection.publish(topic, path.read_bytes(), retain=True)
            info.wait_for_publish(PUBLISH_TIMEOUT)

    def send(self, command: Command) -> bytes:
        """Sign `command` with the operator key and publish it to its device; the wire bytes."""
        data = sign_command(command, self.operator)
        info = self.connection.publish(device_topic(command.device, Kind.CMD), data)
        info.wait_for_publish(PUBLISH_TIMEOUT)
        return data
