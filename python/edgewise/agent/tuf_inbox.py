"""The TUF metadata the control plane keeps retained on ``edgewise/v1/tuf/{role}`` (and every
root version on ``edgewise/v1/tuf/root/{version}``), as received.

The agent subscribes at start, so the broker hands it the retained documents on every
connection and each update as it is published. Nothing here trusts them: the inbox only keeps
the newest document per role and every root version (size-capped by the transport at 64 KiB)
with its claimed version;
python-tuf verifies them when an install asks (`tuf_fetcher.InboxFetcher`). Standard library
only, so the idle agent does not load python-tuf until it installs something.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass

from ..transport.client import Connection
from ..transport.inbound import Inbound
from ..transport.topics import TUF, parse_tuf_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    version: int  # as the document claims; python-tuf checks it
    data: bytes


class MetadataInbox:
    def __init__(self, connection: Connection) -> None:
        self._documents: dict[str, Document] = {}
        self._roots: dict[int, Document] = {}  # every root version, from edgewise/v1/tuf/root/N
        self._arrived = threading.Condition()
        connection.subscribe(f"{TUF}/+", self._on_metadata)
        connection.subscribe(f"{TUF}/root/+", self._on_metadata)

    def get(self, role: str, timeout: float) -> Document | None:
        """The newest document of `role`, waiting up to `timeout` seconds for a first one."""
        with self._arrived:
            self._arrived.wait_for(lambda: role in self._documents, timeout)
            return self._documents.get(role)

    def root(self, version: int, timeout: float) -> Document | None:
        """Root metadata of `version`; None at once when it is newer than the current root, which
        is how a client learns it has walked the whole chain."""
        current = self.get("root", timeout)
        if current is None or version > current.version:
            return None
        if version == current.version:
            return current
        with self._arrived:
            self._arrived.wait_for(lambda: version in self._roots, timeout)
            return self._roots.get(version)

    def snapshot(self) -> MetadataSnapshot:
        """What the inbox holds now, frozen: the fleet simulator verifies such a snapshot once
        for every device that holds exactly the same documents."""
        with self._arrived:
            return MetadataSnapshot(dict(self._documents), dict(self._roots))

    def _on_metadata(self, inbound: Inbound) -> None:
        role, topic_version = parse_tuf_topic(inbound.topic)
        assert isinstance(inbound.body, bytes)
        try:
            version = json.loads(inbound.body)["signed"]["version"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: dropped metadata without a readable version", inbound.topic)
            return
        if isinstance(version, bool) or not isinstance(version, int):
            log.warning("%s: dropped metadata with version %r", inbound.topic, version)
            return
        if topic_version is not None and version != topic_version:
            log.warning("%s: dropped root metadata of version %r", inbound.topic, version)
            return
        with self._arrived:
            document = Document(version, inbound.body)
            if topic_version is None:
                self._documents[role] = document
            else:
                self._roots[version] = document
            self._arrived.notify_all()


@dataclass(frozen=True)
class MetadataSnapshot:
    """An inbox's documents at one moment; answers like the inbox (without waiting)."""

    documents: dict[str, Document]
    roots: dict[int, Document]

    def get(self, role: str, timeout: float) -> Document | None:
        return self.documents.get(role)

    def root(self, version: int, timeout: float) -> Document | None:
        current = self.documents.get("root")
        if current is None or version > current.version:
            return None
        return current if version == current.version else self.roots.get(version)

    def key(self) -> bytes:
        """A digest of every document's exact bytes: equal keys, equal documents."""
        digest = hashlib.sha256()
        for label, document in sorted(
            [(f"role:{role}", d) for role, d in self.documents.items()]
            + [(f"root:{version}", d) for version, d in self.roots.items()]
        ):
            digest.update(f"{label}:{len(document.data)}:".encode())
            digest.update(document.data)
        return digest.digest()
