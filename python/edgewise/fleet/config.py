"""The control plane's configuration: ``control.toml``, with ``EDGEWISE_CONTROL_*`` environment
overrides (edgewise.settings explains the naming). docs/operations.md lists every setting.

The ``[alerts]`` table (one sub-table per rule, ``interval``, ``[alerts.webhook]``) is read by
`AlertRules.from_mapping` (fleet/alert_rules.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import settings
from ..exceptions import ConfigError
from ..transport.acl import CONTROL_USER
from ..transport.broker_settings import BROKER_SPEC, broker_settings
from ..transport.client import BrokerSettings
from .alert_rules import AlertRules

ENV_PREFIX = "EDGEWISE_CONTROL_"

SETTINGS: dict[str, tuple[type, Any]] = {
    # A file path or sqlite:///PATH (the default, SQLite in WAL mode) or postgresql://...
    "store": (str, "control.db"),
    # The TUF repository directory (`edgewise repo init`): its metadata and bundles are served.
    "repository": (str, None),
    # The directory holding operator.key and operator.pub: device commands are signed with it.
    "operator_keys": (str, None),
    "api.host": (str, "127.0.0.1"),
    "api.port": (int, 8700),
    # Seconds per telemetry aggregation window (drift, series, alerts look at whole windows).
    "collector.window": (float, 60.0),
    "rollouts.tick": (float, 1.0),
    # How often the repository's metadata files are checked for changes to republish.
    "metadata.poll": (float, 5.0),
    **BROKER_SPEC,
}


@dataclass(frozen=True)
class ControlConfig:
    store: str
    repository: Path
    operator_keys: Path
    broker: BrokerSettings
    api_host: str = "127.0.0.1"
    api_port: int = 8700  # 0: pick a free port (tests)
    collector_window: float = 60.0
    rollout_tick: float = 1.0
    metadata_poll: float = 5.0
    alert_rules: AlertRules = field(default_factory=AlertRules)

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> ControlConfig:
        document = settings.read_toml(path)
        return cls.from_document(document, str(path), os.environ if environ is None else environ)

    @classmethod
    def from_document(
        cls, document: dict[str, Any], source: str, environ: Mapping[str, str]
    ) -> ControlConfig:
        alerts = document.pop("alerts", {})
        if not isinstance(alerts, dict):
            raise ConfigError(f"{source}: [alerts] must be a table")
        alert_rules = AlertRules.from_mapping(alerts, f"{source}: [alerts]")
        values = settings.resolve(SETTINGS, document, source, environ, ENV_PREFIX)
        for name in ("collector.window", "rollouts.tick", "metadata.poll"):
            if values[name] <= 0:
                raise ConfigError(f"{source}: {name} must be positive")
        return cls(
            store=values["store"],
            repository=Path(values["repository"]),
            operator_keys=Path(values["operator_keys"]),
            broker=broker_settings(values, CONTROL_USER, source),
            api_host=values["api.host"],
            api_port=values["api.port"],
            collector_window=values["collector.window"],
            rollout_tick=values["rollouts.tick"],
            metadata_poll=values["metadata.poll"],
            alert_rules=alert_rules,
        )
