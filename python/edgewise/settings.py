"""Configuration files of the long-running commands (`agent run`, `control run`): TOML, with
environment overrides.

Every setting has a dotted name (``broker.url``); the variable that overrides it is that name
upper-cased with dots as underscores after the command's prefix (``EDGEWISE_AGENT_BROKER_URL``),
so a secret (``..._BROKER_PASSWORD``) need not be written in the file. Each command declares its
settings as a `Spec`: dotted name -> (type, default), a default of None meaning required.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .exceptions import ConfigError

Spec = Mapping[str, tuple[type, Any]]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def env_name(prefix: str, setting: str) -> str:
    return prefix + setting.replace(".", "_").upper()


def resolve(
    spec: Spec, document: Mapping[str, Any], source: str, environ: Mapping[str, str], prefix: str
) -> dict[str, Any]:
    """Every setting of `spec`: from the environment, else the document, else its default."""
    flat = _flatten(document)
    unknown = sorted(set(flat) - set(spec))
    if unknown:
        raise ConfigError(f"{source}: unknown setting {unknown[0]!r}")
    values = {}
    for name, (kind, default) in spec.items():
        variable = env_name(prefix, name)
        raw = environ.get(variable, flat.get(name, default))
        if raw is None:
            raise ConfigError(f"{source}: {name} is required (or set {variable})")
        try:
            if (isinstance(raw, bool) and kind is not bool) or (
                kind is str and not isinstance(raw, str)
            ):
                raise ValueError(raw)
            values[name] = _boolean(raw) if kind is bool else kind(raw)
        except ValueError:
            raise ConfigError(f"{source}: {name} must be {kind.__name__}, not {raw!r}") from None
    return values


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in document.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
