"""The agent's TOML configuration and its EDGEWISE_AGENT_* overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgewise.agent.config import AgentConfig
from edgewise.exceptions import ConfigError

MINIMAL = """
device_id = "dev-a"
state_dir = "/var/lib/edgewise"
trust_root = "/etc/edgewise/root.json"
[broker]
url = "mqtts://broker.example:8883"
ca_file = "/etc/edgewise/ca.crt"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_minimal_configuration_takes_the_defaults(tmp_path):
    config = AgentConfig.load(write(tmp_path, MINIMAL), environ={})
    assert config.device_id == "dev-a"
    assert (config.broker.host, config.broker.port, config.broker.username) == (
        "broker.example",
        8883,
        "dev-a",
    )
    assert config.broker.tls is not None and config.broker.tls.ca_file == "/etc/edgewise/ca.crt"
    assert config.telemetry_window == 60.0 and config.server_port == 8470


def test_environment_overrides_the_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    environ = {
        "EDGEWISE_AGENT_BROKER_URL": "mqtt://127.0.0.1",
        "EDGEWISE_AGENT_BROKER_PASSWORD_FILE": str(secret),
        "EDGEWISE_AGENT_TELEMETRY_WINDOW": "5",
        "EDGEWISE_AGENT_SERVER_PORT": "9000",
    }
    config = AgentConfig.load(write(tmp_path, MINIMAL + '[labels]\nsite = "berlin"\n'), environ)
    assert (config.broker.port, config.broker.tls, config.broker.password) == (1883, None, "s3cret")
    assert (config.telemetry_window, config.server_port) == (5.0, 9000)
    assert config.labels == {"site": "berlin"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace('device_id = "dev-a"', ""), "device_id is required"),
        (MINIMAL.replace("dev-a", "dev/a"), "device id 'dev/a'"),
        (MINIMAL.replace("mqtts://", "http://"), "expected mqtt://HOST"),
        ("telemetry_window = 0\n" + MINIMAL, "telemetry_window must be positive"),
        (MINIMAL + "colour = 1\n", "unknown setting 'broker.colour'"),
        (MINIMAL + "keepalive = 'soon'\n", "broker.keepalive must be int"),
        ("device_id = ", "not valid TOML"),
        (MINIMAL + '[labels]\n"two words" = "x"\n', r"\[labels\] must map names"),
    ],
)
def test_bad_configuration_is_refused_with_the_setting_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        AgentConfig.load(write(tmp_path, text), environ={})
