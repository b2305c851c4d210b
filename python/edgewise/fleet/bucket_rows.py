"""What a batch of fresh telemetry windows makes of the stored rows of their buckets: each
device's merged profiles and the fleet's aggregate (counters, latency histogram, profiles) per
bundle version and bucket. The profile work is two Rust calls without the GIL: each device's
new windows merged over the batch's frames, then folded into what the buckets held."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from .._core import TelemetryBatch, merge_profiles
from .store import Aggregate, DeviceProfiles, StoredRows, WindowRow

ROLES = ("inputs", "outputs")
#: Metrics of a window that are counters: summed over windows and devices.
COUNTERS = ("requests", "rows", "errors")
LATENCY_PREFIXES = ("latency_le_", "latency_over_")

DeviceKey = tuple[str, str, int, float]  # device, bundle name, version, bucket start
BucketKey = tuple[str, int, float]  # bundle name, version, bucket start


def summarize(
    frames: TelemetryBatch, rows: Sequence[WindowRow], stored: StoredRows, seconds: float
) -> tuple[list[DeviceProfiles], list[Aggregate], int]:
    """The rows the fresh window `rows` of `frames` make in buckets of `seconds`, with what
    those buckets already held: each device's and the fleet's; and how many profiles could not
    be merged."""
    by_device: dict[DeviceKey, list[int]] = defaultdict(list)
    for device, _, name, version, start, _, _, _, _, index in rows:
        by_device[(device, name, version, math.floor(start / seconds) * seconds)].append(index)
    devices = list(by_device)
    # Each device's new windows merged (one Rust call over the batch's frames) ...
    new = frames.merge([by_device[key] for key in devices])
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
                bucket_seconds=seconds,
                windows=(held.windows if held else 0) + len(by_device[key]),
                input_profile=inputs,
                output_profile=outputs,
            )
        )
    # The counters and latency buckets of each fleet bucket's windows, summed in Rust.
    members = [[i for p in by_bucket[b] for i in by_device[devices[p]]] for b in buckets]
    totals = frames.totals(members)
    aggregates = []
    unmerged = 0
    for bucket, indices, total in zip(buckets, members, totals, strict=True):
        (inputs, skip_in), (outputs, skip_out) = next(merged), next(merged)
        lost = skipped[bucket] + skip_in + skip_out
        unmerged += lost
        row = _added(stored_buckets.get(bucket), bucket, seconds, len(indices), total, lost)
        aggregates.append(replace(row, input_profile=inputs, output_profile=outputs))
    return device_rows, aggregates, unmerged


def _added(
    held: Aggregate | None,
    bucket: BucketKey,
    seconds: float,
    windows: int,
    totals: tuple[float, float, float, dict[str, float], int],
    unmerged: int,
) -> Aggregate:
    """`held` (or an empty bucket) with `windows` more windows whose summed counters, latency
    buckets and unreadable profiles are `totals`, and `unmerged` profiles that did not merge."""
    total = held or Aggregate(*bucket, bucket_seconds=seconds)
    requests, rows, errors, added_latency, corrupt = totals
    latency: dict[str, float] = defaultdict(float, total.latency)
    for key, value in added_latency.items():
        latency[key] += value
    return replace(
        total,
        windows=total.windows + windows,
        requests=total.requests + requests,
        rows=total.rows + rows,
        errors=total.errors + errors,
        latency=dict(latency),
        corrupt_profiles=total.corrupt_profiles + corrupt + unmerged,
    )


def _merge_each(groups: Sequence[Sequence[bytes]]) -> list[tuple[bytes | None, int]]:
    """`merge_profiles` of each group, except that a group of one profile (already merged, or
    stored) is kept as it is: a device's first window of a bucket costs no parse and write."""
    merging = [group for group in groups if len(group) > 1]
    merged = iter(merge_profiles(merging))  # groups in parallel, on every core
    return [next(merged) if len(g) > 1 else (g[0] if g else None, 0) for g in groups]


def _blobs(row: Aggregate | DeviceProfiles | None, role: str) -> list[bytes]:
    """The stored profile of `role` in `row`, as a list of none or one."""
    if row is None:
        return []
    return _present(row.input_profile if role == "inputs" else row.output_profile)


def _present(*blobs: bytes | None) -> list[bytes]:
    return [blob for blob in blobs if blob is not None]
