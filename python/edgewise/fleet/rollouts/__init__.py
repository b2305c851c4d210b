"""Staged rollouts that halt by themselves: a bundle goes out to the devices a label selector
picks, wave by wave; a wave advances only when its devices run the bundle healthily for the
dwell time, and the rollout halts when failures pass the threshold or a drift or error gate
trips (docs/operations.md, "Rolling out a bundle")."""

from __future__ import annotations

from .actions import abort_rollout, pause_rollout, resume_rollout, start_rollout
from .engine import DriftProbe, RolloutEngine
from .policy import RolloutPolicy

__all__ = [
    "DriftProbe",
    "RolloutEngine",
    "RolloutPolicy",
    "abort_rollout",
    "pause_rollout",
    "resume_rollout",
    "start_rollout",
]
