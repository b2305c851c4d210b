"""The device side of a bundle transfer: ask for windows of chunks, keep what arrives.

Receiver-paced, like AWS IoT's MQTT file delivery: the device publishes a `transfer_request`
for up to `window` missing chunks on its `events` topic and the control plane answers on the
device's `xfer` topic. The next window is asked for when the current one is in, or when no chunk
came for `request_timeout` seconds (lost, rejected, or the connection dropped): then whatever is
still missing is asked for again. A device therefore never has more than one window queued at
the broker, whatever the bundle's size.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..exceptions import MessageError, TransferError
from .client import Connection
from .frames import Chunk
from .inbound import Inbound
from .messages import MAX_WINDOW, TransferRequest, encode
from .progress import Accepted, ChunkLedger, TransferProgress
from .topics import Kind, device_topic

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_WINDOW = 8


class BundleDownload:
    """One bundle's download over `connection`. It listens on the device's `xfer` topic from
    construction until `close`; create it before the connection starts to also catch chunks
    that the broker kept in the session (others are simply asked for again)."""

    def __init__(
        self,
        connection: Connection,
        device: str,
        progress: TransferProgress,
        window: int = DEFAULT_WINDOW,
        request_timeout: float = 15.0,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError(f"window must be 1 to {MAX_WINDOW} chunks, got {window}")
        self.connection = connection
        self.device = device
        self.progress = progress
        self.window = window
        self.request_timeout = request_timeout
        self.on_progress = on_progress  # (chunks received, chunks in all), after each new chunk
        self.requests = 0
        self.rejected = 0  # chunks that arrived sound but do not belong to this transfer
        self._chunks: queue.SimpleQueue[Chunk] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._xfer = device_topic(device, Kind.XFER)
        connection.subscribe(self._xfer, self._on_xfer)

    def close(self) -> None:
        """Stop listening for chunks (the progress on disk stays for a later download)."""
        self.connection.remove_handler(self._xfer, self._on_xfer)

    def __enter__(self) -> BundleDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Make `run` give up at its next check (within a second)."""
        self._cancelled.set()

    def run(self, timeout: float, name: str) -> Path:
        """Download until complete, then assemble into `progress.directory/name`.

        A `TransferError` when `timeout` seconds pass first, when cancelled, or when the
        assembled file does not match the request (progress is then reset for a new try)."""
        deadline = time.monotonic() + timeout
        while not self.progress.complete:
            if self._cancelled.is_set():
                raise TransferError(f"{self.progress.directory}: download cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransferError(
                    f"{self.progress.directory}: download timed out with "
                    f"{len(self.progress.missing())} of {self.progress.total} chunks missing"
                )
            if not self.connection.wait_connected(min(remaining, 1.0)):
                continue
            wanted = next_window(self.progress, self.window)
            self._request(sorted(wanted))
            self._collect(wanted, deadline)
        return self.progress.assemble(name)

    def _request(self, chunks: list[int]) -> None:
        self.requests += 1
        request = transfer_request(self.progress, chunks)
        self.connection.publish(device_topic(self.device, Kind.EVENTS), encode(request))

    def _collect(self, wanted: set[int], deadline: float) -> None:
        """Store arriving chunks until `wanted` is in, or no chunk came for `request_timeout`."""
        quiet_until = time.monotonic() + self.request_timeout
        while wanted and not self._cancelled.is_set():
            now = time.monotonic()
            until = min(quiet_until, deadline)
            if now >= until:
                return
            try:  # at most a second at a time, so that `cancel` is noticed
                chunk = self._chunks.get(timeout=min(until - now, 1.0))
            except queue.Empty:
                continue
            if self._store(chunk) and chunk.index in wanted:
                wanted.discard(chunk.index)
                # Only progress on this window counts: a stream of stray duplicates must not
                # put off asking again for a chunk that was lost.
                quiet_until = time.monotonic() + self.request_timeout

    def _store(self, chunk: Chunk) -> bool:
        """Whether the chunk is now on disk (stored, or it already was)."""
        try:
            outcome = self.progress.accept(chunk)
        except MessageError as exc:
            self.rejected += 1
            log.warning("%s: discarded a chunk: %s", self.device, exc)
            return False
        if outcome is Accepted.STORED and self.on_progress is not None:
            self.on_progress(self.progress.received, self.progress.total)
        return True

    def _on_xfer(self, inbound: Inbound) -> None:
        # Network thread: only hand the chunk over; disk writes happen in `run`'s thread.
        if isinstance(inbound.body, Chunk):
            self._chunks.put(inbound.body)


def next_window(progress: ChunkLedger, window: int) -> set[int]:
    """The chunks to ask for next: the first `window` still missing."""
    return set(progress.missing()[:window])


def transfer_request(progress: ChunkLedger, chunks: list[int]) -> TransferRequest:
    """The request for `chunks` of the download that `progress` records."""
    return TransferRequest(
        transfer=progress.transfer,
        bundle=progress.bundle,
        chunk_size=progress.chunk_size,
        chunks=tuple(chunks),
    )
