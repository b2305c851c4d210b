"""The telemetry collector: stores each device's windows, merges them per bundle version and
time bucket (counters, latency histogram, input and output profiles), per device and for the
fleet, and measures drift of the merged inputs against the bundle's reference profile.

Built for throughput: a batch arrives as the raw telemetry frames devices sent; one Rust call
(`TelemetryBatch`, without the GIL) decodes and checks them all and parses their profiles, a
bad frame refused by itself. The redelivery check, the merging (a second and third Rust call:
each device's windows per bucket, then those into the stored rows and the fleet's buckets) and
the writes all share one transaction.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._core import Profile, TelemetryBatch, merge_profiles
from ..exceptions import MessageError
from ..profiles import DriftReport, drift
from ..transport.messages import Telemetry, encode
from ..transport.telemetry_frame import WindowFields
from .references import ReferenceProfiles, worst_metrics
from .registry import message_key
from .store import MAX_INTEGER, Aggregate, DeviceProfiles, Store, StoredRows, TelemetryWindow

log = logging.getLogger(__name__)

ROLES = ("inputs", "outputs")
#: Metrics of a window that are counters: summed over windows and devices.
COUNTERS = ("requests", "rows", "errors")
LATENCY_PREFIXES = ("latency_le_", "latency_over_")

DeviceKey = tuple[str, str, int, float]  # device, bundle name, version, bucket start
BucketKey = tuple[str, int, float]  # bundle name, version, bucket start


@dataclass(frozen=True)
class _Parsed:
    """A window ready to store: where its frame is in the batch, its counters."""

    window: TelemetryWindow
    index: int
    counters: dict[str, float]
    corrupt: int  # profiles of the window that could not be read


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
        payloads = [_payload(device, message) for device, message in batch]
        frames = TelemetryBatch([p or b"" for p in payloads], threads=1)
        parsed: dict[str, _Parsed] = {}
        for index, ((device, _), fields) in enumerate(zip(batch, frames.windows(), strict=True)):
            if payloads[index] is None:
                self._count(rejected=1)
                continue
            item = self._parse(device, index, fields)
            if item is not None:
                parsed.setdefault(item.window.message_id or "", item)

        def summarize(
            fresh: Sequence[TelemetryWindow], stored: StoredRows
        ) -> tuple[list[DeviceProfiles], list[Aggregate]]:
            return self._summarize(frames, [parsed[w.message_id or ""] for w in fresh], stored)

        return self.store.record_telemetry_batch(
            [item.window for item in parsed.values()], summarize
        )

    def _parse(self, device: str, index: int, fields: WindowFields | str) -> _Parsed | None:
        """The window of one decoded frame; None (counted, logged) if it is refused or serves
        no bundle."""
        if isinstance(fields, str):
            self._count(rejected=1)
            log.warning("device %s: telemetry dropped: %s", device, fields)
            return None
        message_id, _, start, end, bundle, metrics, _, corrupt = fields
        for role, reason in corrupt:
            log.warning(
                "device %s: telemetry %s: %s profile skipped: %s", device, message_id, role, reason
            )
        self._count(corrupt=len(corrupt))
        if bundle is None:
            self._count(unattributed=1)
            return None
        try:
            _check_numbers(bundle[1], metrics)
        except MessageError as exc:
            self._count(rejected=1)
            log.warning("device %s: telemetry %s dropped: %s", device, message_id, exc)
            return None
        window = TelemetryWindow(
            device_id=device,
            bundle_name=bundle[0],
            bundle_version=bundle[1],
            window_start=start,
            window_end=end,
            count=int(metrics.get("requests", 0)),
            errors=int(metrics.get("errors", 0)),
            latency={k: v for k, v in metrics.items() if k.startswith("latency_")},
            message_id=message_key(device, message_id),
        )
        counters = {name: float(metrics.get(name, 0.0)) for name in COUNTERS}
        return _Parsed(window, index, counters, len(corrupt))

    def _summarize(
        self, frames: TelemetryBatch, items: Sequence[_Parsed], stored: StoredRows
    ) -> tuple[list[DeviceProfiles], list[Aggregate]]:
        """The rows the fresh windows `items` make, with what their buckets already held."""
        by_device: dict[DeviceKey, list[_Parsed]] = defaultdict(list)
        for item in items:
            w = item.window
            start = math.floor(w.window_start / self.window) * self.window
            by_device[(w.device_id, w.bundle_name, w.bundle_version, start)].append(item)
        devices = list(by_device)
        # Each device's new windows merged (one Rust call over the batch's frames) ...
        new = frames.merge([[item.index for item in by_device[key]] for key in devices])
        by_bucket: dict[BucketKey, list[int]] = defaultdict(list)
        for position, key in enumerate(devices):
            by_bucket[key[1:]].append(position)
        buckets = list(by_bucket)
        stored_devices = stored.device_profiles(devices)
        stored_buckets = stored.aggregates(buckets)
        # ... then folded into what each device's bucket and each fleet bucket held (another).
        groups = []
        for position, key in enumerate(devices):
            held = stored_devices.get(key)
            for role in ROLES:
                groups.append([*_blobs(held, role), *_present(new[position][0].get(role))])
        for bucket in buckets:
            held_bucket = stored_buckets.get(bucket)
            for role in ROLES:
                parts = [new[p][0].get(role) for p in by_bucket[bucket]]
                groups.append([*_blobs(held_bucket, role), *_present(*parts)])
        merged = iter(_merge_each(groups))
        device_rows = []
        skipped: dict[BucketKey, int] = defaultdict(int)
        for position, key in enumerate(devices):
            (inputs, skip_in), (outputs, skip_out) = next(merged), next(merged)
            skipped[key[1:]] += new[position][1] + skip_in + skip_out
            held = stored_devices.get(key)
            device_rows.append(
                DeviceProfiles(
                    *key,
                    bucket_seconds=self.window,
                    windows=(held.windows if held else 0) + len(by_device[key]),
                    input_profile=inputs,
                    output_profile=outputs,
                )
            )
        aggregates = []
        for bucket in buckets:
            (inputs, skip_in), (outputs, skip_out) = next(merged), next(merged)
            members = [i for p in by_bucket[bucket] for i in by_device[devices[p]]]
            corrupt = sum(i.corrupt for i in members) + skipped[bucket] + skip_in + skip_out
            self._count(corrupt=skipped[bucket] + skip_in + skip_out)
            total = _added(stored_buckets.get(bucket), bucket, self.window, members, corrupt)
            aggregates.append(replace(total, input_profile=inputs, output_profile=outputs))
        return device_rows, aggregates

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


def _check_numbers(version: int, metrics: dict[str, float]) -> None:
    """Counts and versions the store can hold: never negative, never past `MAX_INTEGER`."""
    if version > MAX_INTEGER:
        raise MessageError(f"bundle version {version} is too large")
    for name, value in metrics.items():
        counted = name in COUNTERS or name.startswith(LATENCY_PREFIXES)
        if counted and not 0 <= value <= MAX_INTEGER:
            raise MessageError(f"metric {name} is {value}, outside [0, {MAX_INTEGER}]")


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


def _added(
    held: Aggregate | None,
    bucket: BucketKey,
    seconds: float,
    members: Sequence[_Parsed],
    corrupt: int,
) -> Aggregate:
    """`held` (or an empty bucket) with the counters and latency histogram of `members`."""
    total = held or Aggregate(*bucket, bucket_seconds=seconds)
    latency: dict[str, float] = defaultdict(float, total.latency)
    counters = {"requests": total.requests, "rows": total.rows, "errors": total.errors}
    for item in members:
        for key, value in item.window.latency.items():
            if key.startswith(LATENCY_PREFIXES):
                latency[key] += value
        for counter, value in item.counters.items():
            counters[counter] += value
    return replace(
        total,
        windows=total.windows + len(members),
        requests=counters["requests"],
        rows=counters["rows"],
        errors=counters["errors"],
        latency=dict(latency),
        corrupt_profiles=total.corrupt_profiles + corrupt,
    )


def _merge_each(groups: Sequence[Sequence[bytes]]) -> list[tuple[bytes | None, int]]:
    """`merge_profiles` of each group, except that a group of one profile (already merged, or
    stored) is kept as it is: a device's first window of a bucket costs no parse and write."""
    merging = [group for group in groups if len(group) > 1]
    merged = iter(merge_profiles(merging, threads=1))
    return [next(merged) if len(g) > 1 else (g[0] if g else None, 0) for g in groups]


def _blobs(row: Aggregate | DeviceProfiles | None, role: str) -> list[bytes]:
    """The stored profile of `role` in `row`, as a list of none or one."""
    if row is None:
        return []
    return _present(row.input_profile if role == "inputs" else row.output_profile)


def _present(*blobs: bytes | None) -> list[bytes]:
    return [blob for blob in blobs if blob is not None]
