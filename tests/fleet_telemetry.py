"""Telemetry as devices send it, for the collector's tests and benchmark: windows of credit
applications (optionally shifted, as drifted data) with their input and output profiles."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from edgewise import Profile
from edgewise.agent.telemetry import LATENCY_BOUNDS_MS, PROFILE_K
from edgewise.bundle import Bundle, sha256_hex
from edgewise.datasets import FEATURES, credit_frame
from edgewise.profiles import profile
from edgewise.transport.messages import BundleRef, Telemetry


def bundle_ref(bundle: Bundle, data: bytes | None = None) -> BundleRef:
    data = bundle.to_bytes() if data is None else data
    return BundleRef(bundle.name, bundle.version, sha256_hex(data), len(data))


def repository_with(directory: Path, bundle_path: Path) -> Path:
    """A TUF repository directory holding `bundle_path` as the control side stores targets."""
    bundle = Bundle.read(bundle_path)
    data = bundle_path.read_bytes()
    targets = directory / "targets"
    targets.mkdir(parents=True, exist_ok=True)
    shutil.copy(bundle_path, targets / f"{sha256_hex(data)}.{bundle.name}-{bundle.version}.ewb")
    return directory


def input_profile(rows: int, seed: int, shift: float = 0.0) -> Profile:
    frame = credit_frame(rows, seed=seed, shift=shift)[FEATURES]
    return profile(pa.Table.from_pandas(frame, preserve_index=False), k=PROFILE_K, threads=1)


def output_profile(rows: int, seed: int) -> Profile:
    scores = np.random.default_rng(seed).random(rows)
    return profile(pa.table({"probability": scores}), k=PROFILE_K, threads=1)


def window(
    bundle: BundleRef,
    start: float,
    *,
    inputs: Profile | None,
    outputs: Profile | None = None,
    requests: int = 10,
    errors: int = 0,
    slow: int = 0,
    seconds: float = 60.0,
) -> Telemetry:
    """One window: `requests` of which `errors` failed; `slow` took over a second, the others
    fell in the 1 ms bucket."""
    metrics: dict[str, float] = {f"latency_le_{b}ms": 0 for b in LATENCY_BOUNDS_MS}
    metrics["latency_le_1ms"] = requests - slow
    metrics["latency_over_1000ms"] = slow
    rows = inputs.rows if inputs is not None else 0
    metrics.update(requests=requests, rows=rows, errors=errors)
    profiles = {
        role: p.to_bytes()
        for role, p in (("inputs", inputs), ("outputs", outputs))
        if p is not None
    }
    return Telemetry(
        window_start=start,
        window_end=start + seconds,
        bundle=bundle,
        metrics=metrics,
        profiles=profiles,
    )
