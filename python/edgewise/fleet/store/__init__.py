"""The control plane's state: devices, their events and telemetry, alerts, rollouts, audit log,
API tokens.

One schema (schema.sql) serves SQLite, the embedded default, and PostgreSQL, for fleets that
outgrow one file. `Store` is the one object the rest of the control plane holds; its queries are
grouped by table in the modules of this package.
"""

from __future__ import annotations

from .aggregates import Aggregate, AggregateQueries, StoredRows
from .alerts import Alert, AlertQueries
from .audit_log import AuditQueries, AuditRow, AuditWrite
from .database import MAX_INTEGER, SCHEMA_VERSION
from .device_profiles import DeviceProfileQueries, DeviceProfiles
from .devices import Device, DeviceEvent, DeviceQueries
from .reports import ReportQueries, StateReport
from .rollout_devices import RolloutDevice, RolloutDeviceQueries
from .rollouts import NewRollout, Rollout, RolloutQueries, RolloutWave
from .telemetry import TelemetryQueries, TelemetryWindow, WindowRow
from .tokens import TokenQueries, TokenRow

__all__ = [
    "MAX_INTEGER",
    "SCHEMA_VERSION",
    "Aggregate",
    "Alert",
    "AuditRow",
    "AuditWrite",
    "Device",
    "DeviceEvent",
    "DeviceProfiles",
    "NewRollout",
    "Rollout",
    "RolloutDevice",
    "RolloutWave",
    "StateReport",
    "Store",
    "StoredRows",
    "TelemetryWindow",
    "TokenRow",
    "WindowRow",
]


class Store(
    DeviceQueries,
    ReportQueries,
    TelemetryQueries,
    AggregateQueries,
    DeviceProfileQueries,
    AlertQueries,
    AuditQueries,
    TokenQueries,
    RolloutQueries,
    RolloutDeviceQueries,
):
    """The repository of control-plane state. Thread-safe; open one per process."""
