"""What the simulated devices of one process share at run time: the network loop, the workers,
the shared work, the settings, and the counters the summary reports."""

from __future__ import annotations

import threading
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from ...agent.health import HealthPolicy
from ...transport.loop import NetworkLoop
from .shared import SharedBundles, SharedTrust


@dataclass
class Counters:
    """What the devices of one process did, for the summary (updated under `lock`)."""

    installs_done: int = 0
    installs_failed: int = 0
    rollbacks: int = 0
    commands_rejected: int = 0
    bytes_received: int = 0
    telemetry_windows: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)


@dataclass(frozen=True)
class DeviceContext:
    """What every device of the process shares: the loop, the workers, the shared work."""

    loop: NetworkLoop
    workers: Executor
    trust: SharedTrust
    bundles: SharedBundles
    counters: Counters
    scratch: Path
    health: HealthPolicy
    chunk_size: int
    window: int
    request_timeout: float
    transfer_timeout: float
    metadata_wait: float = 15.0  # seconds to wait for the first retained TUF documents
