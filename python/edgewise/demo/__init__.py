"""`edgewise demo`: the main story on one machine, with embedded defaults.

The batch half trains a credit-risk pipeline, compiles it to a bundle, signs it in a TUF
repository, verifies it and scores Parquet with it (demo/batch.py). The fleet half starts an
embedded broker, the control plane and simulated devices, rolls the bundle out in waves, lets
injected drift raise an alert, and watches a bad second version halt on its canaries
(demo/fleet.py). A closing summary says what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..bundle import Bundle
from ..compile import compile_pipeline
from ..datasets import FEATURES, TARGET, credit_pipeline
from .batch import BatchStory, run_batch_story
from .fleet import FleetStory, run_fleet_story

__all__ = ["DemoStory", "run_demo"]

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoStory:
    batch: BatchStory
    fleet: FleetStory | None
    seconds: float


def run_demo(workdir: Path, *, rows: int, train_rows: int, devices: int, say: Say) -> DemoStory:
    """The whole story; `devices` 0 stops after the batch half."""
    started = time.monotonic()
    batch = run_batch_story(workdir, rows=rows, train_rows=train_rows, say=say)
    fleet = None
    if devices:
        bad = mispacked_v2(batch, say)
        fleet = run_fleet_story(workdir, batch.bundle_path, bad, devices=devices, say=say)
    story = DemoStory(batch, fleet, time.monotonic() - started)
    say_summary(story, say)
    return story


def mispacked_v2(batch: BatchStory, say: Say) -> Bundle:
    """Version 2, retrained, but packed with version 1's model file: a mistake no signature
    catches (the release pipeline signs what it was given), which the devices' health check
    does, since the scores its health sample expects are version 2's."""
    v1 = Bundle.read(batch.bundle_path)
    say("   (meanwhile a v2 is retrained, and its release packs v1's model file by mistake)")
    pipeline = credit_pipeline("hist_gradient_boosting", max_iter=40)
    pipeline.fit(batch.train[FEATURES], batch.train[TARGET])
    v2 = compile_pipeline(pipeline, batch.train, name=v1.name, version=2, target=TARGET).bundle
    manifest = {key: value for key, value in v2.manifest.items() if key != "files"}
    return Bundle.create(manifest, v1.model, v2.health, v2.reference)


def say_summary(story: DemoStory, say: Say) -> None:
    summary = story.batch.summary
    say("")
    say("What happened:")
    say(
        f"- scored {summary.rows_scored:,} rows at {summary.rows_per_second:,.0f} rows/s on "
        f"{summary.engine}; {summary.rows_quarantined:,} quarantined with their reason"
    )
    fleet = story.fleet
    if fleet is not None:
        v1, v2, alert = fleet.v1_rollout, fleet.v2_rollout, fleet.drift_alert
        say(f"- v1 reached {fleet.devices} devices in {v1['wave_count']} waves: {v1['state']}")
        say(f"- drift alert on {alert['subject']}, raised from the devices' own profiles")
        failed = v2["device_states"].get("failed", 0) + v2["device_states"].get("rolled_back", 0)
        say(
            f"- v2 {v2['state']} by itself after {failed} canary failure(s); the other "
            f"devices never received it and still run v1"
        )
        say(f"- {fleet.audit_entries} operator actions in the hash-chained audit log")
    say(f"- {story.seconds:.0f} s in all")
