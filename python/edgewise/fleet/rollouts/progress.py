"""How far the wave in progress is: whether its devices are settled and ran long enough.

Offline devices must not stall a rollout for ever (a real fleet always has some), nor let a
wave pass untested: a device still offline once the wave has run for the install timeout is
deferred (it gets its command when it is back, whatever wave is then in progress), but a wave
advances only with at least one device running the bundle, unless every device is decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..store import Device, RolloutDevice
from .gates import DECIDED, RUNNING_TARGET
from .policy import RolloutPolicy


@dataclass(frozen=True)
class Progress:
    settled: bool  # every device decided or deferred, and the bundle ran for the dwell time
    reason: str  # why not, when not
    running: list[RolloutDevice]  # the wave's devices that run the bundle


def wave_progress(
    wave_rows: Sequence[RolloutDevice],
    fleet: Mapping[str, Device],
    started_at: float | None,
    policy: RolloutPolicy,
    now: float,
) -> Progress:
    running = [row for row in wave_rows if row.state in RUNNING_TARGET]
    decided = sum(row.state in DECIDED for row in wave_rows)
    offline = [
        row
        for row in wave_rows
        if row.state == "pending"
        and not ((device := fleet.get(row.device_id)) is not None and device.online)
    ]
    deferring = started_at is not None and now - started_at >= policy.install_timeout
    waiting_for = len(wave_rows) - decided - (len(offline) if deferring else 0)
    dwell_until = max((row.switched_at or now for row in running), default=now) + policy.dwell
    if waiting_for:
        offline_note = f"; {len(offline)} offline" if offline else ""
        return Progress(
            False, f"{decided} of {len(wave_rows)} devices decided{offline_note}", running
        )
    if not running and decided < len(wave_rows):
        return Progress(False, f"no device runs the bundle yet; {len(offline)} offline", running)
    if dwell_until > now:
        return Progress(False, f"dwelling until {iso(dwell_until)}", running)
    return Progress(True, "", running)


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
