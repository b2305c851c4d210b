"""Named points where a test can make the agent die as a power cut would (SIGKILL, no cleanup).

The install and download code calls `crash_point(name)` at each step whose interruption it must
survive. In production the environment variable is unset and a call costs one look-up. The
restart tests set ``EDGEWISE_AGENT_CRASH_AT=NAME`` (die the first time NAME is reached) or
``NAME@N`` (the N-th time) and check that the restarted agent serves the previous model or the
new verified one, never a partial one.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

CRASH_ENV = "EDGEWISE_AGENT_CRASH_AT"
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get(CRASH_ENV)
    if wanted is None:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
