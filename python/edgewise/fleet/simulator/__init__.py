"""The fleet simulator: many lightweight devices in one process that behave on the wire like
the edge agent (`edgewise fleet simulate`, docs/operations.md "Simulating a fleet")."""

from __future__ import annotations

from .credentials import password_source, read_credentials, write_password_file
from .device import SimulatedDevice
from .fleet import FleetConfig, Offline, Simulator
from .traffic import Drift

__all__ = [
    "Drift",
    "FleetConfig",
    "Offline",
    "SimulatedDevice",
    "Simulator",
    "password_source",
    "read_credentials",
    "write_password_file",
]
