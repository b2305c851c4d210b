"""A simulated device's bundle download: the agent's receiver-paced protocol, driven by events.

`transport.download.BundleDownload` blocks a thread per download; a thousand simulated devices
downloading at once would need a thousand threads. This is the same protocol (the same
`transfer_request` for the first `window` missing chunks, asked again when no chunk of the
window came for `request_timeout` seconds, every chunk checked by `MemoryProgress.accept`), but
chunks are taken as they arrive on the network loop and the fleet's timer calls `tick`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ...exceptions import MessageError
from ...transport.client import Connection
from ...transport.download import next_window, transfer_request
from ...transport.frames import Chunk
from ...transport.messages import BundleRef, encode
from ...transport.progress import Accepted, MemoryProgress
from ...transport.topics import Kind, device_topic

log = logging.getLogger(__name__)


class PacedDownload:
    def __init__(
        self,
        connection: Connection,
        device: str,
        bundle: BundleRef,
        *,
        chunk_size: int,
        window: int,
        request_timeout: float,
        timeout: float,
        on_end: Callable[[PacedDownload, str | None], object],
    ) -> None:
        """`on_end(download, None)` once every chunk is in, or `on_end(download, reason)` when
        the download gave up; called once, from the network loop or the timer."""
        self.connection = connection
        self.device = device
        self.progress = MemoryProgress(bundle, chunk_size)
        self.window = window
        self.request_timeout = request_timeout
        self.deadline = time.monotonic() + timeout
        self.on_end = on_end
        self.requests = 0
        self.rejected = 0
        self.bytes_received = 0
        self._wanted: set[int] = set()
        self._quiet_until = 0.0  # ask again (for what is still missing) after this
        self._ended = False
        self._lock = threading.Lock()
        self._events = device_topic(device, Kind.EVENTS)

    def start(self) -> None:
        with self._lock:
            self._ask()

    def restart(self) -> None:
        """Start over after the assembled bytes did not match (`progress` was reset)."""
        with self._lock:
            self._ended = False
            self._ask()

    def offer(self, chunk: Chunk) -> None:
        """A chunk arrived on the device's `xfer` topic (network loop)."""
        with self._lock:
            if self._ended:
                return
            try:
                outcome = self.progress.accept(chunk)
            except MessageError as exc:
                self.rejected += 1
                log.warning("%s: discarded a chunk: %s", self.device, exc)
                return
            if outcome is Accepted.STORED:
                self.bytes_received += len(chunk.data)
            if chunk.index in self._wanted:
                self._wanted.discard(chunk.index)
                self._quiet_until = time.monotonic() + self.request_timeout
            if self._wanted:
                return
            if not self.progress.complete:
                self._ask()
                return
            self._ended = True
        self.on_end(self, None)

    def tick(self, now: float) -> None:
        """Ask again for a window that went quiet; give up at the deadline (timer thread)."""
        with self._lock:
            if self._ended:
                return
            if now >= self.deadline:
                self._ended = True
                missing = len(self.progress.missing())
                reason = (
                    f"download timed out with {missing} of {self.progress.total} chunks missing"
                )
            else:
                if now >= self._quiet_until and self.connection.is_connected():
                    self._ask()
                return
        self.on_end(self, reason)

    def cancel(self) -> None:
        with self._lock:
            self._ended = True

    def _ask(self) -> None:
        self._wanted = next_window(self.progress, self.window)
        self.requests += 1
        request = transfer_request(self.progress, sorted(self._wanted))
        self.connection.publish(self._events, encode(request))
        self._quiet_until = time.monotonic() + self.request_timeout
