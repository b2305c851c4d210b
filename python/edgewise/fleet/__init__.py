"""The fleet control plane: the store, audit log and HTTP API, and `ControlSide`, the minimal
control side of the fleet protocol that tests and small setups use until `edgewise control run`
(issue 7) grows out of it."""

from __future__ import annotations

from .control import ControlSide

__all__ = ["ControlSide"]
