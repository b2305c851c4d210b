"""The agent's configuration: a TOML file, with ``EDGEWISE_AGENT_*`` environment overrides
(edgewise.settings explains the naming). docs/agent.md lists every setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import settings
from ..exceptions import ConfigError
from ..transport.broker_settings import BROKER_SPEC, broker_settings
from ..transport.client import BrokerSettings
from ..transport.messages import LABEL_NAME
from ..transport.topics import check_device_id
from .health import HealthPolicy

ENV_PREFIX = "EDGEWISE_AGENT_"

#: Each setting: dotted name -> (type, default). None as default means required.
SETTINGS: dict[str, tuple[type, Any]] = {
    "device_id": (str, None),
    "state_dir": (str, None),
    "trust_root": (str, None),
    "bundle_name": (str, ""),
    "hardware": (str, ""),
    "telemetry_window": (float, 60.0),
    **BROKER_SPEC,
    "transfer.chunk_size": (int, 64 * 1024),
    "transfer.window": (int, 8),
    "transfer.request_timeout": (float, 15.0),
    "transfer.timeout": (float, 3600.0),
    "health.tolerance": (float, HealthPolicy.tolerance),
    "health.max_ms_per_row": (float, HealthPolicy.max_ms_per_row),
    "server.port": (int, 8470),
    "server.max_rows": (int, 10_000),
}


@dataclass(frozen=True)
class AgentConfig:
    device_id: str
    state_dir: Path
    trust_root: Path
    broker: BrokerSettings
    bundle_name: str | None = None
    hardware: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    telemetry_window: float = 60.0
    chunk_size: int = 64 * 1024
    window: int = 8
    request_timeout: float = 15.0
    transfer_timeout: float = 3600.0
    health: HealthPolicy = field(default_factory=HealthPolicy)
    server_port: int = 8470  # 0: pick a free port (tests); -1: no local endpoint
    max_rows: int = 10_000

    @classmethod
    def load(cls, path: Path, environ: Mapping[str, str] | None = None) -> AgentConfig:
        document = settings.read_toml(path)
        return cls.from_document(document, str(path), os.environ if environ is None else environ)

    @classmethod
    def from_document(
        cls, document: dict[str, Any], source: str, environ: Mapping[str, str]
    ) -> AgentConfig:
        labels = document.pop("labels", {})
        if not isinstance(labels, dict) or not all(
            LABEL_NAME.fullmatch(k) and isinstance(v, str) and len(v) <= 256
            for k, v in labels.items()
        ):
            raise ConfigError(
                f"{source}: [labels] must map names ({LABEL_NAME.pattern}) to strings of at "
                "most 256 characters"
            )
        values = settings.resolve(SETTINGS, document, source, environ, ENV_PREFIX)
        device = values["device_id"]
        try:
            check_device_id(device)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
        if values["telemetry_window"] <= 0:
            raise ConfigError(f"{source}: telemetry_window must be positive")
        return cls(
            device_id=device,
            state_dir=Path(values["state_dir"]),
            trust_root=Path(values["trust_root"]),
            broker=broker_settings(values, device, source),
            bundle_name=values["bundle_name"] or None,
            hardware=values["hardware"] or None,
            labels=dict(labels),
            telemetry_window=values["telemetry_window"],
            chunk_size=values["transfer.chunk_size"],
            window=values["transfer.window"],
            request_timeout=values["transfer.request_timeout"],
            transfer_timeout=values["transfer.timeout"],
            health=HealthPolicy(values["health.tolerance"], values["health.max_ms_per_row"]),
            server_port=values["server.port"],
            max_rows=values["server.max_rows"],
        )


def env_name(setting: str) -> str:
    return settings.env_name(ENV_PREFIX, setting)
