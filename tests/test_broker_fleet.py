"""The fleet's own tests, run unchanged against the embedded broker: the last will of a
SIGKILLed device process, TLS, and a real `edgewise agent run` installing, upgrading and rolling
back signed bundles over MQTT.

Importing a test function makes pytest collect it here too, with this module's `broker` and
`tls_broker`: the embedded broker instead of Mosquitto.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mqtt_broker import AnyBroker, Credentials, make_certificates, running_broker
from test_agent_daemon import (  # noqa: F401  (fixtures and a test, collected here)
    fleet,
    test_signed_install_then_upgrade_then_rollback,
    versions,
)
from test_transport_client import (  # noqa: F401
    test_a_killed_device_is_marked_offline_by_its_last_will,
    test_tls_refuses_a_broker_certificate_from_another_ca,
    test_tls_with_the_right_ca_connects_and_carries_messages,
)


@pytest.fixture
def broker(embedded_broker: AnyBroker) -> AnyBroker:
    return embedded_broker


@pytest.fixture
def tls_broker(
    tmp_path_factory: pytest.TempPathFactory, broker_credentials: Credentials
) -> Iterator[AnyBroker]:
    certificates = make_certificates(tmp_path_factory.mktemp("tls"))
    yield from running_broker(tmp_path_factory, broker_credentials, certificates, "embedded")
