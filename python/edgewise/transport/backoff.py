"""Reconnect delays: exponential with full jitter.

When a broker comes back after an outage, thousands of devices reconnect at once. Doubling the
delay spaces each device's attempts out; drawing the delay uniformly from [0, cap] ("full
jitter", as AWS's architecture blog recommends) spreads the fleet's attempts over the window
instead of having them arrive in synchronised waves.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self, initial: float = 1.0, maximum: float = 60.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial}, {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempts = 0

    def next_delay(self) -> float:
        """The wait before the next attempt: uniform in [0, min(maximum, initial * 2**n)]."""
        cap = min(self.maximum, self.initial * 2 ** min(self._attempts, 32))
        self._attempts += 1
        return self._rng.uniform(0.0, cap)

    def reset(self) -> None:
        """After a success, the next failure starts again from the initial delay."""
        self._attempts = 0
