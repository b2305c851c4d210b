"""The health gates a wave must pass: the failure threshold, the drift gates, the error gate."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from ..store import RolloutDevice, Store
from .policy import RolloutPolicy, percent_text

#: (bundle, device ids, since) -> worst value per drift metric ("psi", "js", "ks",
#: "wasserstein_normed", "linf") over those devices' telemetry since then, or None while there
#: is no data yet.
DriftProbe = Callable[[tuple[str, int], Collection[str], float], Mapping[str, float] | None]

RUNNING_TARGET = ("succeeded", "skipped")
DECIDED = ("succeeded", "skipped", "failed", "rolling_back", "rolled_back")


@dataclass(frozen=True)
class Verdict:
    """A gate's answer: tripped (halt, with the reason), waiting (no data yet), or passed."""

    tripped: str | None = None
    waiting: str | None = None


PASSED = Verdict()


def failure_verdict(
    policy: RolloutPolicy, devices: Sequence[RolloutDevice], current_wave: int
) -> Verdict:
    """Failures so far over the devices of the waves started so far: a wave's size is the
    denominator from its start, so one failure in a one-device canary halts at once."""
    reached = [device for device in devices if device.wave <= current_wave]
    failed = sum(device.state == "failed" for device in reached)
    if not reached or failed / len(reached) <= policy.max_failure_rate:
        return PASSED
    waves = "wave 1" if current_wave == 0 else f"waves 1-{current_wave + 1}"
    return Verdict(
        tripped=f"failure rate {failed}/{len(reached)} devices "
        f"({percent_text(failed / len(reached))}) in {waves} is above --max-failure-rate "
        f"{percent_text(policy.max_failure_rate)}"
    )


def health_verdict(
    policy: RolloutPolicy,
    store: Store,
    drift: DriftProbe,
    rollout_id: int,
    bundle: tuple[str, int],
    wave: int,
    running: Sequence[RolloutDevice],
) -> Verdict:
    """The drift and error gates over the wave's devices that run the new bundle, since they
    switched to it."""
    if not running or (not policy.drift_gates and policy.error_gate is None):
        return PASSED
    label = f"wave {wave + 1} ({len(running)} devices on the new bundle)"
    waiting = []
    if policy.drift_gates:
        since = min(device.switched_at or 0.0 for device in running)
        values = drift(bundle, [device.device_id for device in running], since)
        for gate in policy.drift_gates:
            value = None if values is None else values.get(gate.metric)
            if value is None:
                waiting.append(f"no {gate.metric} drift data yet")
            elif not gate.passes(value):
                return Verdict(
                    tripped=f"drift gate {gate.describe()} tripped: {gate.metric} {value:.4g} "
                    f"on {label}"
                )
    if policy.error_gate is not None:
        requests, errors = store.wave_request_totals(rollout_id, wave)
        if requests == 0:
            waiting.append("no requests served yet for the error gate")
        elif not policy.error_gate.passes(errors / requests):
            return Verdict(
                tripped=f"error gate {policy.error_gate.describe()} tripped: error rate "
                f"{percent_text(errors / requests)} ({errors} errors in {requests} requests) "
                f"on {label}"
            )
    return Verdict(waiting="; ".join(waiting)) if waiting else PASSED
