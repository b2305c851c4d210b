"""The telemetry collector: windows stored once, merged per bundle version and bucket, drift
against the bundle's reference profile, the time series."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from fleet_telemetry import bundle_ref, input_profile, output_profile, repository_with, window

from edgewise import Bundle, Profile
from edgewise.datasets import FEATURES, credit_frame
from edgewise.fleet.collector import Collector, latency_quantile
from edgewise.fleet.references import ReferenceProfiles, worst_metrics
from edgewise.fleet.store import MAX_INTEGER, Store
from edgewise.profiles import profile
from edgewise.transport.messages import BundleRef, Telemetry


@pytest.fixture
def references(tmp_path: Path, bundle_path: Path) -> ReferenceProfiles:
    return ReferenceProfiles(repository_with(tmp_path / "repo", bundle_path))


@pytest.fixture
def ref(bundle: Bundle) -> BundleRef:
    return bundle_ref(bundle)


def test_merged_windows_equal_one_profile_of_all_rows(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    collector = Collector(store, references, window=60.0)
    parts = [input_profile(50, seed) for seed in range(1, 13)]
    batch = [
        (f"d{i % 4}", window(ref, 1000.0 + i, inputs=part, outputs=output_profile(50, i)))
        for i, part in enumerate(parts)
    ]
    assert collector.record(batch[:5]) == 5
    assert collector.record(batch[5:]) == 7  # merged into the stored bucket
    merged = collector.current_profile((ref.name, ref.version), since=0.0)
    assert merged is not None
    frames = [credit_frame(50, seed=seed)[FEATURES] for seed in range(1, 13)]
    whole = profile(pa.Table.from_pandas(pd.concat(frames), preserve_index=False), threads=1)
    assert merged.rows == whole.rows == 600
    mine = {c["name"]: c for c in merged.summary()}
    for column in whole.summary():
        other = mine[column["name"]]
        for key in ("rows", "nulls", "values", "nan"):  # counts are exact
            assert other.get(key) == column.get(key), (column["name"], key)
        for key in ("mean", "std", "min", "max"):
            if column.get(key) is not None:
                assert math.isclose(other[key], column[key], rel_tol=1e-9), (column["name"], key)
        # HLL distinct counts: within a few percent.
        assert other["distinct"] == pytest.approx(column["distinct"], rel=0.05)
    for name in ("income", "age", "credit_score"):
        assert merged.quantiles(name, [0.1, 0.5, 0.9]) == pytest.approx(
            whole.quantiles(name, [0.1, 0.5, 0.9]), rel=0.05
        )
    [point] = collector.series((ref.name, ref.version))
    assert point["windows"] == 12 and point["requests"] == 120 and point["rows"] == 600
    assert point["bucket_start"] == 960.0


def test_redelivered_windows_are_stored_and_counted_once(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    collector = Collector(store, references)
    message = window(ref, 1000.0, inputs=input_profile(40, 1), requests=7, errors=2)
    assert collector.record([("d1", message), ("d1", message)]) == 1
    assert collector.record([("d1", message)]) == 0
    # The same message id from another device is that device's own window.
    assert collector.record([("d2", message)]) == 1
    [point] = collector.series((ref.name, ref.version))
    assert (point["windows"], point["requests"], point["errors"]) == (2, 14, 4)
    assert point["error_rate"] == pytest.approx(2 / 7)
    assert len(store.telemetry(ref.name, ref.version)) == 2


def test_a_corrupt_profile_is_skipped_and_its_window_kept(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    collector = Collector(store, references)
    good = window(ref, 1000.0, inputs=input_profile(40, 1))
    broken_bytes = bytearray(input_profile(40, 2).to_bytes())
    broken_bytes[len(broken_bytes) // 2 :] = b"\x00" * (len(broken_bytes) - len(broken_bytes) // 2)
    bad = Telemetry(
        **{
            **_fields(window(ref, 1001.0, inputs=None, requests=5)),
            "profiles": {"inputs": bytes(broken_bytes), "outputs": b"not a profile"},
        }
    )
    assert collector.record([("d1", good), ("d2", bad)]) == 2
    assert collector.corrupt_profiles == 2
    [point] = collector.series((ref.name, ref.version))
    assert (point["windows"], point["requests"], point["corrupt_profiles"]) == (2, 15, 2)
    merged = collector.current_profile((ref.name, ref.version), since=0.0)
    assert merged is not None and merged.rows == 40


def test_a_window_with_a_counter_out_of_range_is_refused_alone(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    collector = Collector(store, references)
    good = window(ref, 1000.0, inputs=input_profile(40, 1), requests=7, slow=2)
    too_many = window(ref, 1001.0, inputs=input_profile(40, 2), requests=MAX_INTEGER + 1)
    fields = _fields(window(ref, 1002.0, inputs=None))
    negative = Telemetry(**{**fields, "metrics": {**fields["metrics"], "latency_le_5ms": -1}})
    assert collector.record([("d1", good), ("d2", too_many), ("d3", negative)]) == 1
    assert collector.rejected == 2
    [point] = collector.series((ref.name, ref.version))
    assert (point["windows"], point["requests"]) == (1, 7)
    assert point["latency_histogram"]["latency_over_1000ms"] == 2
    [stored] = store.telemetry(ref.name, ref.version)
    assert (stored.device_id, stored.message_id, stored.count) == ("d1", f"d1/{good.id}", 7)
    assert stored.latency == {k: v for k, v in good.metrics.items() if k.startswith("latency_")}


def test_windows_without_a_bundle_are_not_merged(
    store: Store, references: ReferenceProfiles
) -> None:
    collector = Collector(store, references)
    assert collector.record([("d1", Telemetry(window_start=1.0, window_end=2.0))]) == 0
    assert collector.unattributed == 1


def test_drift_against_the_reference_finds_a_real_shift_and_none_without(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    collector = Collector(store, references, window=60.0)
    key = (ref.name, ref.version)
    assert collector.drift(key, since=0.0) is None  # no data yet
    steady = [
        ("calm", window(ref, 1000.0 + i, inputs=input_profile(200, 100 + i))) for i in range(5)
    ]
    shifted = [
        ("hot", window(ref, 2000.0 + i, inputs=input_profile(200, 200 + i, shift=1.0)))
        for i in range(5)
    ]
    collector.record(steady + shifted)
    calm = collector.drift(key, since=0.0, devices=["calm"])
    hot = collector.drift(key, since=0.0, devices=["hot"])
    assert calm is not None and hot is not None
    assert not calm.drifted
    assert {"income", "utilization"} <= {c.name for c in hot.drifted_columns}
    assert worst_metrics(hot)["psi"] > 0.2 > worst_metrics(calm)["psi"]
    # What the rollout engine asks about one wave's devices.
    assert collector.drift_probe(key, ["hot"], 0.0) == worst_metrics(hot)
    assert collector.drift_probe(key, ["nobody"], 0.0) is None
    # The fleet view since the shift began sees only the shifted buckets.
    fleet = collector.drift(key, since=1990.0)
    assert fleet is not None and fleet.current["rows"] == 1000
    assert "income" in {c.name for c in fleet.drifted_columns}
    # No reference for a bundle the repository does not hold.
    assert collector.drift(("other", 1), since=0.0) is None


def test_latency_quantiles_come_from_the_merged_histogram() -> None:
    histogram = {"latency_le_1ms": 98.0, "latency_le_10ms": 1.0, "latency_over_1000ms": 1.0}
    assert latency_quantile(histogram, 0.5) == 1.0
    assert latency_quantile(histogram, 0.99) == 10.0
    assert latency_quantile(histogram, 1.0) == 1000.0
    assert latency_quantile({}, 0.99) is None


def test_references_are_read_from_the_repository_and_cached(
    references: ReferenceProfiles, bundle: Bundle
) -> None:
    first = references.reference((bundle.name, bundle.version))
    assert isinstance(first, Profile) and first.rows > 0
    assert references.reference((bundle.name, bundle.version)) is first
    assert references.reference((bundle.name, bundle.version + 1)) is None


def _fields(message: Telemetry) -> dict[str, object]:
    return {
        name: getattr(message, name)
        for name in ("id", "ts", "window_start", "window_end", "bundle", "metrics", "profiles")
    }


def test_each_device_keeps_one_merged_profile_per_bucket_for_wave_drift(
    store: Store, references: ReferenceProfiles, ref: BundleRef
) -> None:
    """Drift of a subset of devices (a rollout wave) stays exact without raw window profiles:
    devices sharing buckets, spread over batches, redelivered, each keep their own."""
    collector = Collector(store, references, window=60.0)
    key = (ref.name, ref.version)
    calm = [window(ref, 1000.0 + i, inputs=input_profile(200, 300 + i)) for i in range(6)]
    hot = [window(ref, 1000.0 + i, inputs=input_profile(200, 400 + i, shift=1.0)) for i in range(6)]
    mixed = [pair for c, h in zip(calm, hot, strict=True) for pair in (("calm", c), ("hot", h))]
    assert collector.record(mixed[:5]) == 5
    assert collector.record(mixed[3:]) == 7  # two redelivered, the rest merged into stored rows
    rows = store.device_profiles(key, since=0.0)
    assert [(r.device_id, r.bucket_start, r.windows) for r in rows] == [
        ("calm", 960.0, 6),
        ("hot", 960.0, 6),
    ]
    hot_profile = collector.current_profile(key, since=0.0, devices=["hot"])
    assert hot_profile is not None and hot_profile.rows == 1200
    whole = Profile.merge_all([message_inputs(m) for m in hot])
    assert hot_profile.summary()[0]["mean"] == pytest.approx(whole.summary()[0]["mean"])
    calm_report = collector.drift(key, since=0.0, devices=["calm"])
    hot_report = collector.drift(key, since=0.0, devices=["hot"])
    assert calm_report is not None and not calm_report.drifted
    assert hot_report is not None and "income" in {c.name for c in hot_report.drifted_columns}
    both = collector.current_profile(key, since=0.0, devices=["calm", "hot"])
    fleet = collector.current_profile(key, since=0.0)
    assert both is not None and fleet is not None and both.rows == fleet.rows == 2400
    # Buckets that ended before `since` are left out.
    assert collector.current_profile(key, since=1020.0, devices=["hot"]) is None


def message_inputs(message: Telemetry) -> Profile:
    return Profile.from_bytes(message.profiles["inputs"])
