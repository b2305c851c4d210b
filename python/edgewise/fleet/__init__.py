"""The control plane side of the fleet protocol. For now the minimal `ControlSide` that tests
and small setups use; issue 7 grows it into `edgewise control run`."""

from __future__ import annotations

from .control import ControlSide

__all__ = ["ControlSide"]
