"""The fleet control plane: device registry, rollout engine, telemetry collector, alerts, store,
audit log, HTTP API and its client, the fleet simulator, and `edgewise control run`, the service
that runs them together (fleet/service.py).

Importing the package loads nothing: the operator's `edgewise fleet` commands need only the API
client, never the MQTT, TUF or server libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .control import ControlSide

__all__ = ["ControlSide"]


def __getattr__(name: str) -> Any:
    if name == "ControlSide":
        from .control import ControlSide

        return ControlSide
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
