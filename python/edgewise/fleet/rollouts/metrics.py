"""Prometheus gauges of rollouts, read from the store at each scrape (so every replica of the
API reports the same): rollouts by state, and the devices of unfinished rollouts by state, to
graph a rollout's progress and alert on a halt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..store import Store

ROLLOUT_STATES = ("running", "paused", "halted", "aborted", "completed")
#: Rollouts whose devices are reported: the finished ones would grow the series without end.
UNFINISHED = ("running", "paused", "halted")


class RolloutCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        rollouts = self._store.rollouts()
        by_state = GaugeMetricFamily("edgewise_rollouts", "Rollouts by state", labels=["state"])
        counts = Counter(rollout.state for rollout in rollouts)
        for state in ROLLOUT_STATES:
            by_state.add_metric([state], counts[state])
        yield by_state
        devices = GaugeMetricFamily(
            "edgewise_rollout_devices",
            "Devices of unfinished rollouts by state",
            labels=["rollout", "bundle", "state"],
        )
        unfinished = {rollout.id: rollout for rollout in rollouts if rollout.state in UNFINISHED}
        for rollout_id, states in self._store.rollout_device_counts().items():
            rollout = unfinished.get(rollout_id)
            if rollout is None:
                continue
            bundle = f"{rollout.bundle_name}-{rollout.bundle_version}"
            for state, count in sorted(states.items()):
                devices.add_metric([str(rollout_id), bundle, state], count)
        yield devices
