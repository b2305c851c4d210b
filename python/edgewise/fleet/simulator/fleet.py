"""Many simulated devices in one process: `edgewise fleet simulate --devices N`.

What makes thousands fit on two cores:
- one `NetworkLoop` thread drives every device's MQTT connection (one socket each, no thread);
- a small pool of worker threads checks commands and installs, one command at a time per
  device; downloads wait on the network, not on a thread (`PacedDownload`);
- one timer thread asks quiet download windows again, sends telemetry windows (spread evenly
  over the interval) and injects faults;
- per-device state lives in memory, and work fixed by exact bytes is shared (`shared.py`).
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import resource
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...agent.health import HealthPolicy
from ...exceptions import ConfigError
from ...transport.client import BrokerSettings
from ...transport.loop import NetworkLoop
from ...transport.messages import encode
from ...transport.topics import Kind, check_device_id
from .context import Counters, DeviceContext
from .device import SimulatedDevice
from .shared import SharedBundles, SharedTrust
from .traffic import Drift, Traffic

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between the timer's passes
STOP_TIMEOUT = 10.0
#: File descriptors per device (its socket) and for the rest of the process.
FDS_PER_DEVICE = 1
FDS_SPARE = 256


@dataclass(frozen=True)
class Offline:
    """`fraction` of the devices lose power `after` seconds: no goodbye, the broker publishes
    their last will, and they do not come back."""

    fraction: float
    after: float


@dataclass(frozen=True)
class FleetConfig:
    devices: int
    broker: BrokerSettings  # host, port, TLS, keepalive; each device logs in as itself
    password: Callable[[str], str]  # device id -> its MQTT password
    trust_root: bytes  # the pinned root.json every device starts from
    prefix: str = "sim-"
    labels: dict[str, str] = field(default_factory=dict)
    spread: dict[str, list[str]] = field(default_factory=dict)  # label -> values, round robin
    telemetry_every: float = 60.0
    rows_per_window: int = 100
    #: Parquet rows the devices score (default: each bundle's health sample).
    inputs: Path | None = None
    drift: tuple[Drift, ...] = ()
    offline: Offline | None = None
    chunk_size: int = 64 * 1024
    window: int = 8
    request_timeout: float = 15.0
    transfer_timeout: float = 600.0
    health: HealthPolicy = field(default_factory=HealthPolicy)
    workers: int = 4
    seed: int = 0

    def device_ids(self) -> list[str]:
        width = max(4, len(str(self.devices - 1)))
        return [check_device_id(f"{self.prefix}{i:0{width}d}") for i in range(self.devices)]

    def labels_of(self, index: int) -> dict[str, str]:
        spread = {name: values[index % len(values)] for name, values in self.spread.items()}
        return {**self.labels, **spread}


class Simulator:
    def __init__(self, config: FleetConfig, scratch: Path | None = None) -> None:
        if config.devices < 1:
            raise ConfigError(f"--devices must be at least 1, got {config.devices}")
        self.config = config
        raise_fd_limit(config.devices * FDS_PER_DEVICE + FDS_SPARE)
        self._own_scratch = scratch is None
        self.scratch = (
            Path(tempfile.mkdtemp(prefix="edgewise-sim-")) if scratch is None else scratch
        )
        self.loop = NetworkLoop()
        self.workers = ThreadPoolExecutor(config.workers, thread_name_prefix="sim-worker")
        self.counters = Counters()
        self.trust = SharedTrust(config.trust_root, self.scratch)
        self.bundles = SharedBundles(config.inputs)
        self.context = DeviceContext(
            loop=self.loop,
            workers=self.workers,
            trust=self.trust,
            bundles=self.bundles,
            counters=self.counters,
            scratch=self.scratch,
            health=config.health,
            chunk_size=config.chunk_size,
            window=config.window,
            request_timeout=config.request_timeout,
            transfer_timeout=config.transfer_timeout,
        )
        random = np.random.default_rng(config.seed)
        drifts = _assign(config.drift, config.devices, random)
        offline = _pick(config.offline.fraction if config.offline else 0.0, config.devices, random)
        self.devices: list[SimulatedDevice] = []
        self.traffic: list[Traffic] = []
        for index, device in enumerate(config.device_ids()):
            settings = dataclasses.replace(
                config.broker, username=device, password=config.password(device)
            )
            self.devices.append(
                SimulatedDevice(device, settings, config.labels_of(index), self.context)
            )
            self.traffic.append(Traffic(config.seed + index, config.rows_per_window, drifts[index]))
        self.drifted = [
            d.device for d, t in zip(self.devices, self.traffic, strict=True) if t.drift
        ]
        self.offline = [self.devices[i] for i in sorted(offline)]
        self.started_at = 0.0
        self._offline_done = False
        self._stopping = threading.Event()
        self._timer = threading.Thread(target=self._run_timer, name="sim-timer", daemon=True)

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        self.started_at = time.monotonic()
        self.loop.start()
        for device in self.devices:
            device.start()
        self._timer.start()
        return self

    def wait_online(self, timeout: float, count: int | None = None) -> bool:
        """Whether `count` (default: all) devices are connected within `timeout` seconds."""
        wanted = len(self.devices) if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.online() >= wanted:
                return True
            self._stopping.wait(0.1)
        return self.online() >= wanted

    def online(self) -> int:
        return sum(device.connection.is_connected() for device in self.devices)

    def run(self, duration: float | None, stop: threading.Event) -> None:
        """Run until `stop` is set or `duration` seconds passed."""
        stop.wait(duration)

    def stop(self) -> None:
        """Say offline for every device (as the agent does on SIGTERM), then disconnect."""
        self._stopping.set()
        self._timer.join(STOP_TIMEOUT)
        for device in self.devices:
            if device.download is not None:
                device.download.cancel()
        self.workers.shutdown(wait=True, cancel_futures=True)
        pending = []
        for device in self.devices:
            if device.connection.is_connected() and device.connection.will is not None:
                will = device.connection.will
                pending.append(device.connection.publish(will.topic, will.payload, retain=True))
        deadline = time.monotonic() + STOP_TIMEOUT
        for info in pending:
            info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
        for device in self.devices:
            device.connection.stop(STOP_TIMEOUT, will=False)
        self.loop.stop()
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reporting -----------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        counters = self.counters
        running = Counter(
            f"{d.active.name}-{d.active.version}" if d.active else "none" for d in self.devices
        )
        usage = resource.getrusage(resource.RUSAGE_SELF)
        with counters.lock:
            counts = {
                name: getattr(counters, name)
                for name in (
                    "installs_done",
                    "installs_failed",
                    "rollbacks",
                    "commands_rejected",
                    "bytes_received",
                    "telemetry_windows",
                )
            }
        return {
            "devices": len(self.devices),
            "online": self.online(),
            **counts,
            "running": dict(sorted(running.items())),
            "drifted_devices": len(self.drifted),
            "offline_injected": len(self.offline) if self._offline_done else 0,
            "tuf_verifications": self.trust.verifications,
            "health_checks": self.bundles.health_checks,
            "seconds": round(time.monotonic() - self.started_at, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
            "max_rss_bytes": usage.ru_maxrss * 1024,
        }

    # -- the timer -----------------------------------------------------------------------------

    def _run_timer(self) -> None:
        every = self.config.telemetry_every
        now = time.time()
        count = len(self.devices)
        # Windows spread evenly over the interval, so the broker sees a steady stream.
        due = [(now + every * (i + 1) / count, i, now) for i in range(count)]
        heapq.heapify(due)
        offline_at = None if self.config.offline is None else now + self.config.offline.after
        while not self._stopping.wait(TICK):
            now = time.time()
            monotonic = time.monotonic()
            for device in self.devices:
                download = device.download
                if download is not None:
                    download.tick(monotonic)
            if offline_at is not None and now >= offline_at:
                offline_at = None
                self._go_offline()
            while due and due[0][0] <= now and not self._stopping.is_set():
                _, index, start = heapq.heappop(due)
                self._send_window(index, start, now)
                heapq.heappush(due, (now + every, index, now))

    def _send_window(self, index: int, start: float, end: float) -> None:
        device = self.devices[index]
        if not device.connection.is_connected():
            return
        try:
            message = self.traffic[index].window(device, start, end, self.bundles)
        except Exception:  # one device's rows must not stop every other device's telemetry
            log.exception("%s: telemetry window failed", device.device)
            return
        device.connection.publish(device.topic(Kind.TELEMETRY), encode(message))
        device.publish_state()  # the heartbeat, as the agent sends with each window
        self.counters.add(telemetry_windows=1)

    def _go_offline(self) -> None:
        for device in self.offline:
            device.connection.drop()
        for device in self.offline:
            device.connection.stop(STOP_TIMEOUT, will=False)
        self._offline_done = True
        log.info("%d devices went offline without a word", len(self.offline))


def _pick(fraction: float, count: int, random: np.random.Generator) -> set[int]:
    return set(random.permutation(count)[: round(fraction * count)].tolist())


def _assign(drifts: tuple[Drift, ...], count: int, random: np.random.Generator) -> list[Any]:
    """Each device's drift (or None): each spec takes its fraction from devices not drifted."""
    assigned: list[Drift | None] = [None] * count
    free = random.permutation(count).tolist()
    for drift in drifts:
        take = round(drift.fraction * count)
        for index in free[:take]:
            assigned[index] = drift
        free = free[take:]
    return assigned


def raise_fd_limit(needed: int) -> None:
    """Raise the soft limit on open files to `needed` if the hard limit allows; a
    `ConfigError` that says what to do when it does not."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise ConfigError(
            f"{needed} open files needed (one socket per device), but the hard limit is {hard}: "
            "raise it (ulimit -Hn, or LimitNOFILE= for a service) or simulate fewer devices"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    log.info("raised the open-file limit from %d to %d", soft, needed)
