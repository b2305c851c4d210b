"""Telemetry windows: what the model saw and answered, how fast, and what the process costs.

Each window (default 60 s) becomes one ``telemetry`` message through the durable outbox, so a
broker outage delays it but loses nothing. It carries counts (requests, rows, errors), a
latency histogram with its p50/p99, the process's CPU share and memory, and the Rust profiles
of the inputs and outputs (mergeable, so the control plane can combine windows and devices and
measure drift against the bundle's reference profile). A window ends early when another bundle
starts serving, so one window always describes one model.
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable

from .._core import Batch, Profile
from ..exceptions import MessageError
from ..transport.messages import BundleRef, Telemetry, encode

log = logging.getLogger(__name__)

#: Upper bounds of the latency histogram's buckets, in milliseconds (the last one is open).
LATENCY_BOUNDS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000)
PROFILE_K = 200  # quantile sketch accuracy; 15 columns take about 22 KB
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Window:
    """One window's numbers; `observe` is called from request threads."""

    def __init__(self, bundle: BundleRef | None, start: float) -> None:
        self.bundle = bundle
        self.start = start
        self.requests = 0
        self.rows = 0
        self.errors = 0
        self.latency_counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
        self.inputs: Profile | None = None
        self.outputs: Profile | None = None

    def observe(self, inputs: Batch | None, outputs: Batch | None, seconds: float) -> None:
        self.requests += 1
        milliseconds = seconds * 1000
        bucket = next(
            (i for i, bound in enumerate(LATENCY_BOUNDS_MS) if milliseconds <= bound),
            len(LATENCY_BOUNDS_MS),
        )
        self.latency_counts[bucket] += 1
        if outputs is None or inputs is None:
            self.errors += 1
            return
        self.rows += inputs.num_rows
        self.inputs = _updated(self.inputs, inputs)
        self.outputs = _updated(self.outputs, outputs)

    def metrics(self) -> dict[str, float]:
        metrics: dict[str, float] = {
            "requests": self.requests,
            "rows": self.rows,
            "errors": self.errors,
        }
        for bound, count in zip(LATENCY_BOUNDS_MS, self.latency_counts, strict=False):
            metrics[f"latency_le_{bound}ms"] = count
        metrics["latency_over_1000ms"] = self.latency_counts[-1]
        for quantile in (0.5, 0.99):
            metrics[f"latency_p{round(quantile * 100)}_ms"] = self._quantile_ms(quantile)
        return metrics

    def _quantile_ms(self, quantile: float) -> float:
        """The bucket bound below which `quantile` of the requests fell (an upper estimate)."""
        total = sum(self.latency_counts)
        if total == 0:
            return 0.0
        seen = 0
        # The open last bucket is reported at the largest bound: p99 says "over 1 s" as 1000.
        bounds = (*LATENCY_BOUNDS_MS, LATENCY_BOUNDS_MS[-1])
        for bound, count in zip(bounds, self.latency_counts, strict=True):
            seen += count
            if seen >= quantile * total:
                return float(bound)
        return float(bounds[-1])

    def profiles(self) -> dict[str, bytes]:
        return {
            name: profile.to_bytes()
            for name, profile in (("inputs", self.inputs), ("outputs", self.outputs))
            if profile is not None
        }


def _updated(profile: Profile | None, batch: Batch) -> Profile:
    if profile is None:  # one window serves one bundle, so the columns stay the same
        profile = Profile(batch, k=PROFILE_K, threads=1)
    profile.update(batch)
    return profile


class ProcessUsage:
    """CPU share since the last reading and resident memory, from the kernel's own counters."""

    def __init__(self) -> None:
        self._cpu, self._at = self._cpu_seconds(), time.monotonic()

    @staticmethod
    def _cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def reading(self) -> dict[str, float]:
        cpu, at = self._cpu_seconds(), time.monotonic()
        share = (cpu - self._cpu) / max(at - self._at, 1e-9)
        self._cpu, self._at = cpu, at
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
        return {
            "cpu_percent": round(100 * share, 3),
            "rss_bytes": resident_pages * _PAGE_SIZE,
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }


class TelemetryWindows:
    """Collects observations and sends one message per window with `send`."""

    def __init__(self, window: float, send: Callable[[Telemetry], None]) -> None:
        self.window = window
        self.send = send
        self.usage = ProcessUsage()
        self._lock = threading.Lock()
        self._current = Window(None, time.time())
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agent-telemetry", daemon=True)

    def observe(
        self,
        bundle: BundleRef | None,
        inputs: Batch | None,
        outputs: Batch | None,
        seconds: float,
    ) -> None:
        """Record one request: `outputs` None for a request that failed."""
        with self._lock:
            if bundle != self._current.bundle:
                self._rotate(bundle)
            self._current.observe(inputs, outputs, seconds)

    def start(self) -> TelemetryWindows:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Send the last, partial window."""
        self._stopping.set()
        self._thread.join(timeout=10)
        with self._lock:
            self._rotate(self._current.bundle)

    def _run(self) -> None:
        while not self._stopping.wait(self.window):
            with self._lock:
                self._rotate(self._current.bundle)

    def _rotate(self, bundle: BundleRef | None) -> None:
        """End the current window (send it) and open the next one for `bundle`."""
        ended, now = self._current, time.time()
        self._current = Window(bundle, now)
        self.send(window_message(ended, now, self.usage.reading()))


def window_message(window: Window, end: float, usage: dict[str, float]) -> Telemetry:
    """The telemetry message of `window`, ended at `end`, with the process's `usage`; its
    profiles are left out (and `profiles_omitted` says so) if they would pass the message cap."""
    message = Telemetry(
        window_start=window.start,
        window_end=end,
        bundle=window.bundle,
        metrics={**window.metrics(), **usage},
        profiles=window.profiles(),
    )
    try:
        encode(message)
    except MessageError:
        log.warning("window profiles over the message cap; sent without them")
        message = Telemetry(
            window_start=message.window_start,
            window_end=message.window_end,
            bundle=message.bundle,
            metrics={**message.metrics, "profiles_omitted": 1},
        )
    return message
