"""Durations as operators write them: ``90s``, ``10m``, ``1h``, ``2d``, or plain seconds."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds in `value`; ValueError naming `what` for anything else (negative, NaN, '1 week')."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: {value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"{what}: {value!r} is not a duration (e.g. 90s, 10m, 1h, 2d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what}: {value!r} is not a duration")
    return seconds
