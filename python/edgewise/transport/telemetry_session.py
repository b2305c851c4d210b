"""The control plane's telemetry session: the Rust core's MQTT client (`TelemetrySubscriber`)
connected with the same broker settings as the paho `Connection`, under a client id of its own
so that both persistent sessions live side by side at the broker."""

from __future__ import annotations

from .._core import TelemetrySubscriber
from ..exceptions import ConfigError
from .client import BrokerSettings

#: Messages received and not yet handed to the collector; a full queue stops the reading.
QUEUE = 10_000


def telemetry_subscriber(client_id: str, settings: BrokerSettings) -> TelemetrySubscriber:
    """A subscriber to every device's telemetry, connecting (in the background) at once."""
    tls = settings.tls
    if tls is not None and (tls.cert_file or tls.key_file):
        raise ConfigError(
            f"broker {settings.host}:{settings.port}: the telemetry session does not support "
            "client certificates; authenticate the control user with a password"
        )
    return TelemetrySubscriber(
        settings.host,
        settings.port,
        client_id,
        username=settings.username,
        password=settings.password,
        tls=tls is not None,
        ca_file=None if tls is None else tls.ca_file,
        keepalive=float(settings.keepalive),
        backoff_initial=settings.backoff_initial,
        backoff_max=settings.backoff_max,
        queue=QUEUE,
    )
