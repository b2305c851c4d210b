"""The TUF metadata the control plane keeps retained on ``edgewise/v1/tuf/{role}``, as received.

The agent subscribes at start, so the broker hands it the retained documents on every
connection and each update as it is published. Nothing here trusts them: the inbox only keeps
the newest document per role (size-capped by the transport at 64 KiB) and its claimed version;
python-tuf verifies them when an install asks (`tuf_fetcher.InboxFetcher`). Standard library
only, so the idle agent does not load python-tuf until it installs something.
"""

from __future__ import annotations

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
        self._arrived = threading.Condition()
        connection.subscribe(f"{TUF}/+", self._on_metadata)

    def get(self, role: str, timeout: float) -> Document | None:
        """The newest document of `role`, waiting up to `timeout` seconds for a first one."""
        with self._arrived:
            self._arrived.wait_for(lambda: role in self._documents, timeout)
            return self._documents.get(role)

    def _on_metadata(self, inbound: Inbound) -> None:
        role = parse_tuf_topic(inbound.topic)
        assert isinstance(inbound.body, bytes)
        try:
            version = json.loads(inbound.body)["signed"]["version"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s: dropped metadata without a readable version", inbound.topic)
            return
        if isinstance(version, bool) or not isinstance(version, int):
            log.warning("%s: dropped metadata with version %r", inbound.topic, version)
            return
        with self._arrived:
            self._documents[role] = Document(version, inbound.body)
            self._arrived.notify_all()
