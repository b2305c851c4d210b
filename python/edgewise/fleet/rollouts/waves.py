"""Which wave each device belongs to.

Devices are ordered by a hash of the rollout id and the device id, then cut into waves of the
policy's sizes: the same rollout always picks the same canaries (a restart changes nothing),
while two rollouts pick different ones, so no device is everyone's guinea pig.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .policy import RolloutPolicy


def wave_order(rollout_id: int, device_id: str) -> bytes:
    return hashlib.sha256(f"{rollout_id}\x00{device_id}".encode()).digest()


def assign_waves(
    rollout_id: int, device_ids: Iterable[str], policy: RolloutPolicy
) -> list[tuple[str, int]]:
    """(device id, wave) for each device, the waves sized by the policy."""
    ordered = sorted(set(device_ids), key=lambda device_id: wave_order(rollout_id, device_id))
    assigned: list[tuple[str, int]] = []
    for wave, size in enumerate(policy.wave_sizes(len(ordered))):
        start = len(assigned)
        assigned.extend((device_id, wave) for device_id in ordered[start : start + size])
    return assigned
