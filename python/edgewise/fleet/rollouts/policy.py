"""A rollout's policy, in the operator's words: waves, failure threshold, dwell, gates, rate.

Each option is parsed from the text an operator types (``--waves 1%,10%,50%,100%``,
``--dwell 10m``, ``--drift-gate 'psi<0.2'``, ``--rate 100/min``) and refused with a message
naming the option. The policy is stored as JSON with its rollout and read back unchanged.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ...exceptions import RolloutError

#: The drift report's own metric names (edgewise.drift): a gate compares the worst over the
#: columns; categorical columns report psi, js and linf, numeric ones psi, js, ks and
#: wasserstein_normed (Wasserstein over the reference standard deviation).
DRIFT_METRICS = ("psi", "js", "ks", "wasserstein_normed", "linf")
ERROR_METRIC = "error_rate"
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_RATE_PERIODS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")
_GATE = re.compile(r"^\s*([a-z_]+)\s*(<=|<)\s*(\d+(?:\.\d+)?(?:e-?\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class WaveSize:
    """How far a wave takes the rollout: a share of the selected devices (cumulative) or a
    number of devices (cumulative too)."""

    amount: float
    percent: bool

    def cumulative(self, total: int) -> int:
        """How many of `total` devices the rollout has reached once this wave is done."""
        if self.percent:
            return min(total, math.ceil(total * self.amount / 100 - 1e-9))
        return min(total, int(self.amount))

    def describe(self) -> str:
        return f"{self.amount:g}%" if self.percent else str(int(self.amount))


@dataclass(frozen=True)
class Gate:
    """A condition the devices of a wave must meet to advance: ``metric < threshold``."""

    metric: str
    threshold: float
    inclusive: bool = False  # `<=` rather than `<`

    def passes(self, value: float) -> bool:
        return value <= self.threshold if self.inclusive else value < self.threshold

    def describe(self) -> str:
        threshold = (
            percent_text(self.threshold) if self.metric == ERROR_METRIC else f"{self.threshold:g}"
        )
        return f"{self.metric}{'<=' if self.inclusive else '<'}{threshold}"


@dataclass(frozen=True)
class Rate:
    """At most `count` install commands per `period` seconds."""

    count: int
    period: float

    def describe(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}[self.period]
        return f"{self.count}/{unit}"


@dataclass(frozen=True)
class RolloutPolicy:
    waves: tuple[WaveSize, ...]
    max_failure_rate: float  # a fraction, 0..1
    dwell: float  # seconds
    install_timeout: float  # seconds
    drift_gates: tuple[Gate, ...] = ()
    error_gate: Gate | None = None
    rate: Rate | None = None
    auto_rollback: bool = False

    @classmethod
    def parse(
        cls,
        *,
        waves: str = "1%,10%,50%,100%",
        max_failure_rate: str = "5%",
        dwell: str = "10m",
        install_timeout: str = "30m",
        drift_gates: Iterable[str] = (),
        error_gate: str | None = None,
        rate: str | None = None,
        auto_rollback: bool = False,
    ) -> RolloutPolicy:
        """The policy the operator's option texts describe; `RolloutError` names a bad one."""
        return cls(
            waves=parse_waves(waves),
            max_failure_rate=parse_fraction("--max-failure-rate", max_failure_rate),
            dwell=parse_duration("--dwell", dwell, allow_zero=True),
            install_timeout=parse_duration("--install-timeout", install_timeout),
            drift_gates=tuple(
                parse_gate("--drift-gate", text, DRIFT_METRICS) for text in drift_gates
            ),
            error_gate=None
            if error_gate is None
            else parse_gate("--error-gate", error_gate, (ERROR_METRIC,)),
            rate=None if rate is None else parse_rate(rate),
            auto_rollback=auto_rollback,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutPolicy:
        error_gate, rate = data.get("error_gate"), data.get("rate")
        return cls(
            waves=tuple(WaveSize(**wave) for wave in data["waves"]),
            max_failure_rate=float(data["max_failure_rate"]),
            dwell=float(data["dwell"]),
            install_timeout=float(data["install_timeout"]),
            drift_gates=tuple(Gate(**gate) for gate in data.get("drift_gates", ())),
            error_gate=None if error_gate is None else Gate(**error_gate),
            rate=None if rate is None else Rate(**rate),
            auto_rollback=bool(data.get("auto_rollback", False)),
        )

    def describe(self) -> dict[str, Any]:
        """The policy in the words of the command line, for status output."""
        return {
            "waves": ",".join(wave.describe() for wave in self.waves),
            "max_failure_rate": percent_text(self.max_failure_rate),
            "dwell": _seconds(self.dwell),
            "install_timeout": _seconds(self.install_timeout),
            "drift_gates": [gate.describe() for gate in self.drift_gates],
            "error_gate": None if self.error_gate is None else self.error_gate.describe(),
            "rate": None if self.rate is None else self.rate.describe(),
            "auto_rollback": self.auto_rollback,
        }

    def wave_sizes(self, total: int) -> list[int]:
        """How many of `total` devices each wave holds (not cumulative): the first wave has at
        least one device when there is any."""
        reached = [wave.cumulative(total) for wave in self.waves]
        if total and reached[0] == 0:
            reached[0] = 1
        reached = [max(reached[: index + 1]) for index in range(len(reached))]
        reached[-1] = total
        return [now - before for before, now in zip([0, *reached], reached, strict=False)]


def parse_waves(text: str) -> tuple[WaveSize, ...]:
    option = "--waves"
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or not all(parts):
        raise RolloutError(
            f"{option} {text!r}: give wave sizes separated by commas, e.g. 1%,10%,100%"
        )
    waves = []
    for part in parts:
        if part.endswith("%"):
            amount = _number(option, part[:-1], text)
            if not 0 < amount <= 100:
                raise RolloutError(f"{option} {text!r}: {part} is not a share in (0%, 100%]")
            waves.append(WaveSize(amount, percent=True))
        elif part.isdigit() and int(part) > 0:
            waves.append(WaveSize(float(int(part)), percent=False))
        else:
            raise RolloutError(
                f"{option} {text!r}: {part!r} is neither a percentage (10%) nor a device count (5)"
            )
    last = waves[-1]
    if not (last.percent and last.amount == 100):
        raise RolloutError(f"{option} {text!r}: the last wave must be 100% (every selected device)")
    for before, after in itertools.pairwise(waves):
        if before.percent == after.percent and after.amount <= before.amount:
            raise RolloutError(
                f"{option} {text!r}: waves are cumulative and must grow "
                f"({after.describe()} follows {before.describe()})"
            )
        if before.percent and not after.percent:
            raise RolloutError(
                f"{option} {text!r}: device counts ({after.describe()}) must come before "
                "percentages"
            )
    return tuple(waves)


def parse_fraction(option: str, text: str) -> float:
    """``5%`` or ``0.05`` as 0.05."""
    stripped = text.strip()
    value = _number(option, stripped.removesuffix("%"), text)
    if stripped.endswith("%"):
        value /= 100
    if not 0 <= value <= 1:
        raise RolloutError(f"{option} {text!r}: must be between 0% and 100%")
    return value


def parse_duration(option: str, text: str, *, allow_zero: bool = False) -> float:
    """``30s``, ``10m``, ``2h`` or plain seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise RolloutError(f"{option} {text!r}: expected a duration like 30s, 10m or 2h")
    seconds = float(match[1]) * _UNITS.get(match[2] or "s", 1.0)
    if seconds == 0 and not allow_zero:
        raise RolloutError(f"{option} {text!r}: must be longer than zero")
    return seconds


def parse_gate(option: str, text: str, metrics: tuple[str, ...]) -> Gate:
    match = _GATE.match(text)
    if match is None or match[1] not in metrics:
        example = f"{metrics[0]}<{'2%' if metrics[0] == ERROR_METRIC else '0.2'}"
        raise RolloutError(
            f"{option} {text!r}: expected METRIC<THRESHOLD with METRIC one of "
            f"{', '.join(metrics)}, e.g. {example}"
        )
    threshold = float(match[3]) / (100 if match[4] else 1)
    if match[1] == ERROR_METRIC and not 0 < threshold <= 1:
        raise RolloutError(f"{option} {text!r}: an error rate threshold is in (0%, 100%]")
    return Gate(match[1], threshold, inclusive=match[2] == "<=")


def parse_rate(text: str) -> Rate:
    option = "--rate"
    count, _, unit = text.strip().partition("/")
    period = _RATE_PERIODS.get(unit.strip())
    if not count.strip().isdigit() or int(count) <= 0 or period is None:
        raise RolloutError(
            f"{option} {text!r}: expected a number of commands per s, min or h, e.g. 100/min"
        )
    return Rate(int(count), period)


def _number(option: str, text: str, whole: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RolloutError(f"{option} {whole!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RolloutError(f"{option} {whole!r}: {text!r} is not a finite number")
    return value


def percent_text(fraction: float) -> str:
    """0.05 as 5%, 1/3 as 33.33%."""
    return f"{fraction * 100:.4g}%"


def _seconds(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
