"""The alert rules' settings: thresholds with their defaults, how often to evaluate, the
webhook, read from the ``[alerts]`` table of the control plane's configuration. What each rule
means is in alerts.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..exceptions import ConfigError
from .durations import parse_duration

#: The rules, by the names alerts and the [alerts] table use.
RULES = ("drift", "error_rate", "latency_p99", "devices_offline", "failed_installs")


@dataclass(frozen=True)
class DriftRule:
    enabled: bool = True
    window: float = 3600.0
    psi: float = 0.2
    verdict: bool = True


@dataclass(frozen=True)
class ErrorRateRule:
    enabled: bool = True
    window: float = 600.0
    max_percent: float = 5.0
    min_requests: int = 100  # fewer requests say too little to alert on


@dataclass(frozen=True)
class LatencyRule:
    enabled: bool = True
    window: float = 600.0
    max_ms: float = 250.0
    min_requests: int = 100


@dataclass(frozen=True)
class OfflineRule:
    enabled: bool = True
    after: float = 300.0
    max_count: int | None = None
    max_fraction: float | None = 0.1


@dataclass(frozen=True)
class FailedInstallsRule:
    enabled: bool = True
    window: float = 3600.0
    max_count: int = 3


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    timeout: float = 5.0
    attempts: int = 3


@dataclass(frozen=True)
class AlertRules:
    """The rules and their thresholds, how often to evaluate them and the webhook to tell;
    `from_mapping` reads the ``[alerts]`` TOML table."""

    #: Seconds between evaluations (the service's tick).
    interval: float = 30.0
    webhook: WebhookSettings | None = None
    drift: DriftRule = field(default_factory=DriftRule)
    error_rate: ErrorRateRule = field(default_factory=ErrorRateRule)
    latency_p99: LatencyRule = field(default_factory=LatencyRule)
    devices_offline: OfflineRule = field(default_factory=OfflineRule)
    failed_installs: FailedInstallsRule = field(default_factory=FailedInstallsRule)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], source: str = "[alerts]") -> AlertRules:
        """Rules from a table of sub-tables, one per rule (``[alerts.error_rate]
        max_percent = 2``); what is not given keeps its default. Durations may be written
        ``10m``; an unknown rule or setting is an error naming it. Besides the rules:
        ``interval = "30s"`` and ``[alerts.webhook] url = "https://...", timeout = "5s",
        attempts = 3``."""
        rules = cls()
        for name, settings in table.items():
            where = f"{source}.{name}"
            if name == "interval":
                try:
                    rules = replace(rules, interval=parse_duration(settings, where))
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                continue
            default = WebhookSettings("") if name == "webhook" else getattr(rules, name, None)
            if name.startswith("_") or default is None or not isinstance(settings, Mapping):
                raise ConfigError(f"{source}: unknown alert rule {name!r}")
            rules = replace(rules, **{name: _rule(default, settings, where)})
        if rules.webhook is not None and not rules.webhook.url.startswith(("http://", "https://")):
            raise ConfigError(f"{source}.webhook.url: must be an http:// or https:// URL")
        return rules


def _rule(default: Any, settings: Mapping[str, Any], where: str) -> Any:
    types = {f.name: f.type for f in fields(default)}
    values = {}
    for key, raw in settings.items():
        kind = types.get(key)
        if kind is None:
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {', '.join(types)})")
        try:
            values[key] = _convert(str(kind), raw, f"{where}.{key}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return replace(default, **values)


def _convert(kind: str, raw: Any, where: str) -> Any:
    if raw is None and "None" in kind:
        return None
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ValueError(f"{where}: must be true or false, not {raw!r}")
        return raw
    if kind == "str":
        if not isinstance(raw, str):
            raise ValueError(f"{where}: must be a string, not {raw!r}")
        return raw
    if where.endswith((".window", ".after", ".timeout")):
        return parse_duration(raw, where)
    number = int if kind.startswith("int") else float
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ValueError(f"{where}: must be a non-negative number, not {raw!r}")
    if number is int and raw != int(raw):
        raise ValueError(f"{where}: must be a whole number, not {raw!r}")
    return number(raw)
