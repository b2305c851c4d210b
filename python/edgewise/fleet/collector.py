"""The telemetry collector: stores each device's windows, merges them per bundle version and
time bucket (counters, latency histogram, input and output profiles), per device and for the
fleet, and measures drift of the merged inputs against the bundle's reference profile.

Built for throughput: a batch arrives as the raw telemetry frames devices sent; one Rust call
(`TelemetryBatch`, without the GIL) decodes and checks them all and parses their profiles, a
bad frame refused by itself; another builds the store's window rows (numbers checked for the
store), so no Python object is made per message unless something went wrong. The redelivery
check, the merging (more Rust calls: each device's windows per bucket, then those into the
stored rows and the fleet's buckets, counters summed) and the writes share one transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from typing import Any

from .._core import Profile, TelemetryBatch, merge_profiles
from ..exceptions import MessageError
from ..profiles import DriftReport, drift
from ..transport.messages import Telemetry, encode
from .bucket_rows import LATENCY_PREFIXES, summarize
from .references import ReferenceProfiles, worst_metrics
from .store import MAX_INTEGER, Aggregate, DeviceProfiles, Store, StoredRows, WindowRow

log = logging.getLogger(__name__)


class Collector:
    """Stores and merges telemetry windows; answers drift and time-series questions."""

    def __init__(
        self, store: Store, references: ReferenceProfiles, *, window: float = 60.0
    ) -> None:
        if not window > 0:
            raise ValueError(f"collector window must be positive, not {window}")
        self.store = store
        self.references = references
        self.window = window
        self._lock = threading.Lock()
        self.corrupt_profiles = 0  # profiles that could not be read or merged, skipped
        self.unattributed = 0  # windows of devices serving no bundle: nothing to merge into
        self.rejected = 0  # frames refused, or windows with numbers out of range, dropped

    def record(self, batch: Sequence[tuple[str, Telemetry | bytes]]) -> int:
        """Store and merge `(device id, telemetry)` pairs, each a `Telemetry` or the raw frame
        the device published; the number of windows newly stored (the others were
        redeliveries or refused: counted in `rejected`, `unattributed`)."""
        devices, payloads = [], []
        for device, message in batch:
            payload = _payload(device, message)
            if payload is None:
                self._count(rejected=1)
            else:
                devices.append(device)
                payloads.append(payload)
        return self.record_frames(devices, TelemetryBatch(payloads, threads=1))

    def record_frames(self, devices: Sequence[str], frames: TelemetryBatch) -> int:
        """`record` for frames already decoded (as `TelemetrySubscriber` hands them over),
        `devices[i]` the device that sent frame `i`."""
        # One Rust call checks every window's numbers and builds the store's rows; Python
        # only loops over what went wrong, to log it.
        rows, refused, unattributed, corrupt = frames.rows(list(devices), MAX_INTEGER)
        for _, device, reason in refused:
            log.warning("device %s: telemetry dropped: %s", device, reason)
        for device, message_id, role, reason in corrupt:
            log.warning(
                "device %s: telemetry %s: %s profile skipped: %s", device, message_id, role, reason
            )
        self._count(corrupt=len(corrupt), unattributed=unattributed, rejected=len(refused))

        def rows_of(
            fresh: Sequence[WindowRow], stored: StoredRows
        ) -> tuple[list[DeviceProfiles], list[Aggregate]]:
            devices, aggregates, unmerged = summarize(frames, fresh, stored, self.window)
            self._count(corrupt=unmerged)
            return devices, aggregates

        return self.store.record_telemetry_batch(rows, rows_of)

    def _count(self, *, corrupt: int = 0, unattributed: int = 0, rejected: int = 0) -> None:
        with self._lock:
            self.corrupt_profiles += corrupt
            self.unattributed += unattributed
            self.rejected += rejected

    # -- questions ---------------------------------------------------------------------------

    def current_profile(
        self,
        bundle: tuple[str, int],
        *,
        since: float,
        devices: Collection[str] | None = None,
        role: str = "inputs",
    ) -> Profile | None:
        """The merged profile of a bundle version's `role` in the buckets that end after
        `since`: the fleet's aggregates, or `devices`' own merged profiles."""
        field = "input_profile" if role == "inputs" else "output_profile"
        rows: Sequence[Aggregate | DeviceProfiles]
        if devices is None:
            rows = self.store.aggregates(bundle, since)
        else:
            rows = self.store.device_profiles(bundle, since, devices)
        blobs = [blob for row in rows if (blob := getattr(row, field)) is not None]
        merged, skipped = merge_profiles([blobs], threads=1)[0]
        self._count(corrupt=skipped)
        return None if merged is None else Profile.from_bytes(merged, threads=1)

    def drift(
        self,
        bundle: tuple[str, int],
        *,
        since: float,
        devices: Collection[str] | None = None,
    ) -> DriftReport | None:
        """Drift of the bundle version's inputs since `since` (of `devices` only, when given)
        from its reference profile; None without a reference or without data yet."""
        reference = self.references.reference(bundle)
        if reference is None:
            return None
        current = self.current_profile(bundle, since=since, devices=devices)
        if current is None or current.rows == 0:
            return None
        return drift(reference, current)

    def drift_probe(
        self, bundle: tuple[str, int], devices: Collection[str], since: float
    ) -> dict[str, float] | None:
        """The rollout engine's DriftProbe: the worst value of each drift metric ("psi", "js",
        "wasserstein_normed", ...) over `devices`' telemetry since `since`; None without data."""
        report = self.drift(bundle, since=since, devices=devices)
        return None if report is None else worst_metrics(report)

    def series(self, bundle: tuple[str, int], *, since: float = 0.0) -> list[dict[str, Any]]:
        """The bundle version's counters per bucket, oldest first."""
        return [series_point(a) for a in self.store.aggregates(bundle, since)]


def series_point(a: Aggregate) -> dict[str, Any]:
    """One bucket of the time series, with the error rate and latency quantiles derived."""
    return {
        "bucket_start": a.bucket_start,
        "bucket_seconds": a.bucket_seconds,
        "windows": a.windows,
        "requests": a.requests,
        "rows": a.rows,
        "errors": a.errors,
        "error_rate": a.errors / a.requests if a.requests else 0.0,
        "latency_p50_ms": latency_quantile(a.latency, 0.5),
        "latency_p99_ms": latency_quantile(a.latency, 0.99),
        "latency_histogram": a.latency,
        "corrupt_profiles": a.corrupt_profiles,
    }


def latency_quantile(histogram: dict[str, float], quantile: float) -> float | None:
    """The bucket bound (ms) below which `quantile` of the requests fell, an upper estimate as
    the agent computes it; the open last bucket counts at the largest bound. None if empty."""
    buckets = []
    for key, count in histogram.items():
        for prefix in LATENCY_PREFIXES:
            if key.startswith(prefix) and key.endswith("ms"):
                try:
                    bound = float(key[len(prefix) : -2])
                except ValueError:
                    continue
                # An "over" bucket sorts after the "le" bucket of the same bound.
                buckets.append((bound, prefix == "latency_over_", count))
    buckets.sort()
    total = sum(count for _, _, count in buckets)
    if total <= 0:
        return None
    seen = 0.0
    for bound, _, count in buckets:
        seen += count
        if seen >= quantile * total:
            return bound
    return buckets[-1][0]


def _payload(device: str, message: Telemetry | bytes) -> bytes | None:
    """The frame to decode: as received, or encoded from a `Telemetry`; None (logged) if the
    `Telemetry` cannot be framed."""
    if isinstance(message, bytes):
        return message
    try:
        return encode(message)
    except MessageError as exc:
        log.warning("device %s: telemetry %s dropped: %s", device, message.id, exc)
        return None
