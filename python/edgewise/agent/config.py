"""The agent's configuration: a TOML file, with ``EDGEWISE_AGENT_*`` environment overrides.

Every setting has a dotted name (``broker.url``); the variable that overrides it is that name
upper-cased with dots as underscores after the prefix (``EDGEWISE_AGENT_BROKER_URL``), so a
secret (``EDGEWISE_AGENT_BROKER_PASSWORD``) need not be written in the file. docs/agent.md lists
every setting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..exceptions import ConfigError
from ..transport.client import BrokerSettings, Tls
from ..transport.messages import LABEL_NAME
from ..transport.topics import check_device_id
from .health import HealthPolicy

ENV_PREFIX = "EDGEWISE_AGENT_"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}

#: Each setting: dotted name -> (type, default). None as default means required.
SETTINGS: dict[str, tuple[type, Any]] = {
    "device_id": (str, None),
    "state_dir": (str, None),
    "trust_root": (str, None),
    "bundle_name": (str, ""),
    "hardware": (str, ""),
    "telemetry_window": (float, 60.0),
    "broker.url": (str, None),
    "broker.username": (str, ""),
    "broker.password": (str, ""),
    "broker.password_file": (str, ""),
    "broker.ca_file": (str, ""),
    "broker.cert_file": (str, ""),
    "broker.key_file": (str, ""),
    "broker.keepalive": (int, 30),
    "broker.backoff_initial": (float, 1.0),
    "broker.backoff_max": (float, 60.0),
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
        try:
            document = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
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
        values = _settings(document, source, environ)
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
            broker=_broker(values, device, source),
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
    return ENV_PREFIX + setting.replace(".", "_").upper()


def _settings(document: dict[str, Any], source: str, environ: Mapping[str, str]) -> dict[str, Any]:
    flat = _flatten(document)
    unknown = sorted(set(flat) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}")
    values = {}
    for name, (kind, default) in SETTINGS.items():
        raw = environ.get(env_name(name), flat.get(name, default))
        if raw is None:
            raise ConfigError(f"{source}: {name} is required (or set {env_name(name)})")
        try:
            if isinstance(raw, bool) or (kind is str and not isinstance(raw, str)):
                raise ValueError(raw)
            values[name] = kind(raw)
        except ValueError:
            raise ConfigError(f"{source}: {name} must be {kind.__name__}, not {raw!r}") from None
    return values


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_broker_url(text: str, source: str) -> tuple[str, int, bool]:
    """(host, port, TLS) of ``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]``."""
    url = urlparse(text)
    if url.scheme not in DEFAULT_PORTS or not url.hostname:
        raise ConfigError(f"{source} {text!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    return url.hostname, url.port or DEFAULT_PORTS[url.scheme], url.scheme == "mqtts"


def _broker(values: dict[str, Any], device: str, source: str) -> BrokerSettings:
    host, port, tls_wanted = parse_broker_url(values["broker.url"], f"{source}: broker.url")
    password = values["broker.password"] or None
    if values["broker.password_file"]:
        try:
            password = Path(values["broker.password_file"]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{source}: broker.password_file: {exc.strerror}") from exc
    tls = None
    if tls_wanted:
        tls = Tls(
            values["broker.ca_file"] or None,
            values["broker.cert_file"] or None,
            values["broker.key_file"] or None,
        )
    return BrokerSettings(
        host=host,
        port=port,
        username=values["broker.username"] or device,
        password=password,
        tls=tls,
        keepalive=values["broker.keepalive"],
        backoff_initial=values["broker.backoff_initial"],
        backoff_max=values["broker.backoff_max"],
    )
