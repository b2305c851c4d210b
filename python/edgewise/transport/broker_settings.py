"""The ``[broker]`` table that every connecting command's configuration shares (the agent's,
the control plane's): which broker, as whom, over what."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ..exceptions import ConfigError
from .client import BrokerSettings, Tls

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}

#: The broker settings, in the form of `edgewise.settings.Spec`.
BROKER_SPEC: dict[str, tuple[type, Any]] = {
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
}


def parse_broker_url(text: str, source: str) -> tuple[str, int, bool]:
    """(host, port, TLS) of ``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]``."""
    url = urlparse(text)
    if url.scheme not in DEFAULT_PORTS or not url.hostname:
        raise ConfigError(f"{source} {text!r}: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    return url.hostname, url.port or DEFAULT_PORTS[url.scheme], url.scheme == "mqtts"


def broker_settings(values: dict[str, Any], default_username: str, source: str) -> BrokerSettings:
    """BrokerSettings from resolved ``broker.*`` values; the username defaults as given."""
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
        username=values["broker.username"] or default_username,
        password=password,
        tls=tls,
        keepalive=values["broker.keepalive"],
        backoff_initial=values["broker.backoff_initial"],
        backoff_max=values["broker.backoff_max"],
    )
