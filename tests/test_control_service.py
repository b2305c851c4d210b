"""`edgewise control run` end to end: a real Mosquitto, a real TUF repository, real
`edgewise agent run` processes, and the operator's `edgewise fleet` commands over the HTTP API.
The device registry, rollout engine, collector and alerts all run inside the one service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fleet import AgentProcess
from agent_support import with_wrong_expectations
from click.testing import CliRunner
from control_plane import ControlProcess
from mqtt_broker import Broker
from trust_world import World

from edgewise.cli import main

DEVICES = ("dev-a", "dev-b")


@pytest.fixture
def control(
    tmp_path: Path, broker: Broker, world: World, store_url: str
) -> Iterator[ControlProcess]:
    """The control plane over SQLite, then over a real PostgreSQL (the `store_url` fixture)."""
    world.publish()
    world.publish(with_wrong_expectations(world.bundle, version=9))
    process = ControlProcess(tmp_path / "control", broker, world, store_url).start()
    yield process
    process.kill()


@pytest.fixture
def agents(tmp_path: Path, broker: Broker, world: World, control: ControlProcess) -> Iterator[None]:
    processes = [AgentProcess(tmp_path / device, broker, world, device) for device in DEVICES]
    try:
        for process in processes:
            process.start()
        yield
    finally:
        for process in processes:
            process.kill()


def fleet(control: ControlProcess, *args: str) -> object:
    result = CliRunner().invoke(
        main, ["fleet", *args, "--api", control.url, "--token", control.token, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def online(devices: list[dict[str, object]]) -> bool:
    return sorted(d["id"] for d in devices if d["online"]) == sorted(DEVICES)


@pytest.mark.usefixtures("agents")
def test_devices_register_then_a_good_rollout_completes_and_a_broken_one_halts(
    control: ControlProcess, world: World
) -> None:
    control.wait_for("/v1/devices", online)
    name = world.bundle.name

    good = fleet(
        control,
        "rollout",
        "start",
        f"{name}:{world.bundle.version}",
        "--select",
        "site=lab",
        "--waves",
        "50%,100%",
        "--dwell",
        "0s",
    )
    done = control.wait_for(f"/v1/rollouts/{good['id']}", lambda r: r["state"] != "running")
    assert done["state"] == "completed", done
    devices = control.call("GET", "/v1/devices")
    assert {(d["bundle_name"], d["bundle_version"]) for d in devices} == {
        (name, world.bundle.version)
    }

    # The broken bundle's health check fails on the canary: the rollout halts by itself and
    # the second device never hears of it.
    broken = fleet(
        control,
        "rollout",
        "start",
        f"{name}:9",
        "--select",
        "site=lab",
        "--waves",
        "50%,100%",
        "--dwell",
        "0s",
        "--max-failure-rate",
        "0%",
    )
    halted = control.wait_for(f"/v1/rollouts/{broken['id']}", lambda r: r["state"] != "running")
    assert halted["state"] == "halted", halted
    states = sorted(d["state"] for d in halted["devices"])
    assert states == ["failed", "pending"], halted
    devices = control.call("GET", "/v1/devices")
    assert {d["bundle_version"] for d in devices} == {world.bundle.version}

    # The story is in the audit log, and the chain holds.
    verification = fleet(control, "audit", "verify")
    assert verification["ok"], verification


def test_stops_cleanly_on_sigterm(control: ControlProcess) -> None:
    assert control.terminate() == 0


def test_a_bad_configuration_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    config = tmp_path / "control.toml"
    config.write_text('store = "x.db"\n[broker]\nurl = "mqtt://127.0.0.1:1"\n')
    result = CliRunner().invoke(main, ["control", "run", "--config", str(config)])
    assert result.exit_code == 1
    assert "repository is required (or set EDGEWISE_CONTROL_REPOSITORY)" in result.output
