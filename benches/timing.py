"""Timing shared by the benchmarks and their peers' scripts (standard library only, so that
the peers' own environments can import it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `repeat` calls of `run` in seconds, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result
