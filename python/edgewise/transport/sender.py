"""The control-plane side of a bundle transfer: answer each device's requests for chunks.

Stateless: every `transfer_request` names the bundle, the chunk size and the chunks, so the
server only looks the bundle up, reads those chunks from the file and publishes them on the
requesting device's `xfer` topic. The device is taken from the topic the request came on (the
broker ACL ties it to the sender), never from the message. A request for a bundle the server
does not have, or whose file differs in length, is logged and left unanswered: the device's
request timeout and retry handle it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from .client import Connection
from .frames import Chunk
from .inbound import Inbound
from .messages import BundleRef, TransferRequest, chunk_count
from .topics import Kind, all_devices, device_topic

log = logging.getLogger(__name__)

#: Finds the file of a bundle (by its SHA-256, name and version), or None if it is unknown.
Resolver = Callable[[BundleRef], Path | None]


class ChunkServer:
    def __init__(self, connection: Connection, resolve: Resolver) -> None:
        self.connection = connection
        self.resolve = resolve
        self.chunks_sent = 0

    def start(self) -> ChunkServer:
        self.connection.subscribe(all_devices(Kind.EVENTS), self._on_events)
        return self

    def answer(self, device: str, request: TransferRequest) -> int:
        """Publish the chunks `request` asks for to `device`; how many were sent."""
        path = self.resolve(request.bundle)
        if path is None:
            log.warning("%s asked for unknown bundle %s", device, request.bundle.sha256)
            return 0
        topic = device_topic(device, Kind.XFER)
        total = chunk_count(request.bundle.length, request.chunk_size)
        with open(path, "rb") as bundle:
            if os.fstat(bundle.fileno()).st_size != request.bundle.length:
                log.error("%s: not the %d bytes %s expects", path, request.bundle.length, device)
                return 0
            for index in request.chunks:
                bundle.seek(index * request.chunk_size)
                data = bundle.read(request.chunk_size)
                chunk = Chunk(request.transfer, index, total, data)
                self.connection.publish(topic, chunk.encode())
        self.chunks_sent += len(request.chunks)
        return len(request.chunks)

    def _on_events(self, inbound: Inbound) -> None:
        if isinstance(inbound.body, TransferRequest) and inbound.device is not None:
            self.answer(inbound.device, inbound.body)
