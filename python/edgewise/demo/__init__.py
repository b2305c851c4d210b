"""`edgewise demo`: the main story on one machine, with embedded defaults."""

from __future__ import annotations

from .batch import run_demo

__all__ = ["run_demo"]
