"""The telemetry collector: stores each device's windows, merges them per bundle version and
time bucket (counters, latency histogram, input and output profiles), and measures drift of the
merged inputs against the bundle's reference profile.

Built for throughput: a batch of windows is checked for redeliveries with one query, its
profiles are parsed once and merged per bucket in one Rust call (`Profile.merge_all`, without
the GIL), the stored aggregate of each bucket is read and written once per batch, all in one
transaction.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._core import Profile
from ..exceptions import MessageError, ProfileFormatError
from ..profiles import DriftReport, drift
from ..transport.messages import Telemetry
from .references import ReferenceProfiles, worst_metrics
from .registry import message_key
from .store import MAX_INTEGER, Aggregate, Store, TelemetryWindow

log = logging.getLogger(__name__)

ROLES = ("inputs", "outputs")
#: Metrics of a window that are counters: summed over windows and devices.
COUNTERS = ("requests", "rows", "errors")
LATENCY_PREFIXES = ("latency_le_", "latency_over_")


@dataclass(frozen=True)
class _Parsed:
    """A window ready to store, with its profiles parsed (those that were readable)."""

    window: TelemetryWindow
    counters: dict[str, float]
    profiles: dict[str, Profile]
    corrupt: int


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
        self.rejected = 0  # windows with numbers out of range, dropped

    def record(self, batch: Sequence[tuple[str, Telemetry]]) -> int:
        """Store and merge `(device id, telemetry)` pairs; the number of windows newly stored
        (the others were redeliveries)."""
        parsed: dict[str, _Parsed] = {}
        for device, message in batch:
            if message.bundle is None:
                self._count(unattributed=1)
                continue
            try:
                item = self._parse(device, message)
            except MessageError as exc:
                self._count(rejected=1)
                log.warning("device %s: telemetry %s dropped: %s", device, message.id, exc)
                continue
            parsed.setdefault(item.window.message_id or "", item)
        fresh = self.store.unseen_telemetry([item.window for item in parsed.values()])

        def summarize(windows: Sequence[TelemetryWindow]) -> list[Aggregate]:
            return self._summarize([parsed[w.message_id or ""] for w in windows])

        return self.store.record_telemetry_batch(fresh, summarize(fresh), summarize, self._combine)

    def _parse(self, device: str, message: Telemetry) -> _Parsed:
        assert message.bundle is not None
        _check_numbers(message)
        profiles: dict[str, Profile] = {}
        raw: dict[str, bytes] = {}
        corrupt = 0
        for role in ROLES:
            text = message.profiles.get(role)
            if text is None:
                continue
            try:
                data = base64.b64decode(text, validate=True)
                profiles[role] = Profile.from_bytes(data, threads=1)
                raw[role] = data
            except (binascii.Error, ProfileFormatError, ValueError) as exc:
                corrupt += 1
                log.warning(
                    "device %s: telemetry %s: %s profile skipped: %s", device, message.id, role, exc
                )
        self._count(corrupt=corrupt)
        metrics = message.metrics
        window = TelemetryWindow(
            device_id=device,
            bundle_name=message.bundle.name,
            bundle_version=message.bundle.version,
            window_start=message.window_start,
            window_end=message.window_end,
            count=int(metrics.get("requests", 0)),
            errors=int(metrics.get("errors", 0)),
            latency={k: v for k, v in metrics.items() if k.startswith("latency_")},
            input_profile=raw.get("inputs"),
            output_profile=raw.get("outputs"),
            message_id=message_key(device, message.id),
        )
        counters = {name: float(metrics.get(name, 0.0)) for name in COUNTERS}
        return _Parsed(window, counters, profiles, corrupt)

    def _summarize(self, items: Sequence[_Parsed]) -> list[Aggregate]:
        groups: dict[tuple[str, int, float], list[_Parsed]] = defaultdict(list)
        for item in items:
            w = item.window
            bucket = math.floor(w.window_start / self.window) * self.window
            groups[(w.bundle_name, w.bundle_version, bucket)].append(item)
        aggregates = []
        for (name, version, bucket), members in groups.items():
            latency: dict[str, float] = defaultdict(float)
            counters = dict.fromkeys(COUNTERS, 0.0)
            for item in members:
                for key, value in item.window.latency.items():
                    if key.startswith(LATENCY_PREFIXES):
                        latency[key] += value
                for counter, value in item.counters.items():
                    counters[counter] += value
            merged = {
                role: self._merge_all([i.profiles[role] for i in members if role in i.profiles])
                for role in ROLES
            }
            aggregates.append(
                Aggregate(
                    bundle_name=name,
                    bundle_version=version,
                    bucket_start=bucket,
                    bucket_seconds=self.window,
                    windows=len(members),
                    latency=dict(latency),
                    corrupt_profiles=sum(i.corrupt for i in members),
                    input_profile=_bytes(merged["inputs"]),
                    output_profile=_bytes(merged["outputs"]),
                    **counters,
                )
            )
        return aggregates

    def _merge_all(self, profiles: list[Profile]) -> Profile | None:
        """One profile of all (in one Rust call, which combines each column's distinct-count
        sketches in a single union). Profiles whose columns differ from the first are skipped,
        as are, one by one, those that cannot be merged (a column of another kind)."""
        if not profiles:
            return None
        columns = profiles[0].column_names
        alike = [p for p in profiles if p.column_names == columns]
        self._count(corrupt=len(profiles) - len(alike))
        try:
            return Profile.merge_all(alike, threads=1)
        except ValueError:
            merged = alike[0]
            for profile in alike[1:]:
                merged = self._merge(merged, profile)
            return merged

    def _merge(self, a: Profile, b: Profile) -> Profile:
        """`a` and `b` merged; `a` alone if they cannot be (a column of another kind)."""
        try:
            return a.merge(b)
        except ValueError as exc:
            self._count(corrupt=1)
            log.warning("a telemetry profile could not be merged and was skipped: %s", exc)
            return a

    def _combine(self, stored: Aggregate, new: Aggregate) -> Aggregate:
        latency = dict(stored.latency)
        for key, value in new.latency.items():
            latency[key] = latency.get(key, 0.0) + value
        profiles = {}
        for role, mine, theirs in (
            ("inputs", stored.input_profile, new.input_profile),
            ("outputs", stored.output_profile, new.output_profile),
        ):
            present = [Profile.from_bytes(p, threads=1) for p in (mine, theirs) if p is not None]
            merged = self._merge_all(present)
            profiles[role] = _bytes(merged)
        return replace(
            stored,
            windows=stored.windows + new.windows,
            requests=stored.requests + new.requests,
            rows=stored.rows + new.rows,
            errors=stored.errors + new.errors,
            latency=latency,
            corrupt_profiles=stored.corrupt_profiles + new.corrupt_profiles,
            input_profile=profiles["inputs"],
            output_profile=profiles["outputs"],
        )

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
        """The merged profile of a bundle version's `role` since `since`: from the aggregates
        (whole buckets) for the fleet, from the devices' own windows for `devices`."""
        blobs: list[bytes | None]
        if devices is None:
            field = "input_profile" if role == "inputs" else "output_profile"
            blobs = [getattr(a, field) for a in self.store.aggregates(bundle, since)]
        else:
            windows = self.store.telemetry(*bundle, since=since, devices=devices)
            blobs = [w.input_profile if role == "inputs" else w.output_profile for w in windows]
        profiles = [Profile.from_bytes(b, threads=1) for b in blobs if b is not None]
        return self._merge_all(profiles)

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


def _check_numbers(message: Telemetry) -> None:
    """Counts and versions the store can hold: never negative, never past `MAX_INTEGER`."""
    assert message.bundle is not None
    if message.bundle.version > MAX_INTEGER:
        raise MessageError(f"bundle version {message.bundle.version} is too large")
    for name, value in message.metrics.items():
        counted = name in COUNTERS or name.startswith(LATENCY_PREFIXES)
        if counted and not 0 <= value <= MAX_INTEGER:
            raise MessageError(f"metric {name} is {value}, outside [0, {MAX_INTEGER}]")


def _bytes(profile: Profile | None) -> bytes | None:
    return None if profile is None else profile.to_bytes()
