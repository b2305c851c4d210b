"""`edgewise fleet simulate`'s devices against a real Mosquitto (each device its own user under
the ACL) and a real control side (TUF metadata, chunks, operator-signed commands)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fleet import EDGEWISE, Fleet, serving_fleet, two_versions
from agent_support import ref_of, with_wrong_expectations
from click.testing import CliRunner
from mqtt_broker import Broker, Credentials
from trust_world import World

from edgewise import Profile
from edgewise.agent.commands import new_command, sign_command
from edgewise.cli import main
from edgewise.fleet.simulator import Drift, FleetConfig, Offline, Simulator, write_password_file
from edgewise.fleet.simulator.credentials import new_passwords, write_credentials
from edgewise.transport import BundleRef, SlotStatus, State, Status, Telemetry
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.telemetry_frame import RawTelemetry
from edgewise.transport.topics import Kind, device_topic
from edgewise.trust.keys import generate_key

DEVICES = 20
SCALE_DEVICES = 400  # the broker knows this many devices; one test runs them all (~8 s)
TIMEOUT = 60.0  # seconds for the whole small fleet to do something, on a loaded machine


@pytest.fixture
def sim_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    directory = tmp_path_factory.mktemp("sim-mosquitto")
    os.chmod(directory, 0o700)
    ids = [f"sim-{i:04d}" for i in range(SCALE_DEVICES)]
    passwords = new_passwords([CONTROL_USER, *ids])
    password_file = write_password_file(passwords, directory / "passwords")
    server = Broker(directory, Credentials(password_file, passwords))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def versions(world: World) -> tuple[Path, Path]:
    return two_versions(world)


@pytest.fixture
def fleet(world: World, sim_broker: Broker, versions) -> Iterator[Fleet]:
    yield from serving_fleet(world, sim_broker, list(versions))


def config(world: World, broker: Broker, devices: int = DEVICES, **options) -> FleetConfig:
    settings = broker.settings(CONTROL_USER)
    return FleetConfig(
        devices=devices,
        broker=settings,
        password=broker.credentials.passwords.__getitem__,
        trust_root=(world.tmp / "root.json").read_bytes(),
        labels={"fleet": "test"},
        spread={"site": ["berlin", "paris"]},
        chunk_size=4096,
        request_timeout=3.0,
        **options,
    )


@pytest.fixture
def simulator(world: World, sim_broker: Broker, fleet: Fleet) -> Iterator[Simulator]:
    with Simulator(config(world, sim_broker, telemetry_every=3600.0)) as running:
        assert running.wait_online(TIMEOUT)
        yield running


def latest_states(fleet: Fleet) -> dict[str, State]:
    states: dict[str, State] = {}
    for inbound in list(fleet.reports.received):
        if isinstance(inbound.body, State) and inbound.device is not None:
            states[inbound.device] = inbound.body
    return states


def wait_all(fleet: Fleet, ids: list[str], check, timeout: float = TIMEOUT) -> dict[str, State]:
    def done(_) -> bool:
        states = latest_states(fleet)
        return all(d in states and check(states[d]) for d in ids)

    assert fleet.reports.wait_for(done, timeout), {
        d: s for d, s in latest_states(fleet).items() if not check(s)
    }
    return latest_states(fleet)


def running(bundle: BundleRef | None):
    return lambda state: state.status is Status.ONLINE and state.active == bundle


def install_all(fleet: Fleet, ids: list[str], bundle: BundleRef) -> None:
    for device in ids:
        fleet.send(device, "install", bundle)


def test_devices_come_online_with_retained_state_and_labels(fleet, simulator):
    ids = [d.device for d in simulator.devices]
    states = wait_all(fleet, ids, running(None))
    assert states["sim-0000"].labels == {"fleet": "test", "site": "berlin"}
    assert states["sim-0001"].labels == {"fleet": "test", "site": "paris"}


def test_an_install_to_all_succeeds(fleet, simulator, versions):
    first = ref_of(versions[0])
    ids = [d.device for d in simulator.devices]
    wait_all(fleet, ids, running(None))
    install_all(fleet, ids, first)
    states = wait_all(fleet, ids, running(first))
    assert all(states[d].slots["a"].bundle == first for d in ids)
    for device in ids:
        done = fleet.wait_event(device, "install.done")
        assert done[0].detail["health"]["max_abs_diff"] <= 1e-6
        assert [e.name for e in fleet.events(device)][:2] == ["command.accepted", "install.started"]
    summary = simulator.summary()
    assert summary["installs_done"] == DEVICES and summary["installs_failed"] == 0
    assert summary["tuf_verifications"] == 1 and summary["health_checks"] == 1
    assert summary["bytes_received"] == DEVICES * first.length


def test_forged_and_replayed_commands_are_rejected(fleet, simulator, versions, tmp_path):
    first = ref_of(versions[0])
    device = "sim-0003"
    wait_all(fleet, [device], running(None))
    intruder = generate_key(tmp_path / "intruder", "operator")
    assert intruder is not None
    forged = sign_command(
        new_command(device, "install", bundle=(first.name, first.version)),
        fleet.world.signer("operator", tmp_path / "intruder"),
    )
    fleet.control.connection.publish(device_topic(device, Kind.CMD), forged)
    rejected = fleet.wait_event(device, "command.rejected")
    assert "not signed by an operator key" in rejected[0].detail["reason"]
    genuine = fleet.control.send(new_command(device, "install", bundle=(first.name, first.version)))
    wait_all(fleet, [device], running(first))
    fleet.control.connection.publish(device_topic(device, Kind.CMD), genuine)
    rejected = fleet.wait_event(device, "command.rejected", count=2)
    assert "a replay" in rejected[1].detail["reason"]
    assert len(fleet.events(device, "install.started")) == 1
    assert simulator.summary()["commands_rejected"] == 2


def test_a_bundle_that_fails_its_health_check_is_not_activated(fleet, simulator, versions, world):
    first = ref_of(versions[0])
    ids = [d.device for d in simulator.devices][:4]
    wait_all(fleet, ids, running(None))
    install_all(fleet, ids, first)
    wait_all(fleet, ids, running(first))
    # Signed and listed in new targets metadata, but its model does not give the answers its
    # health sample expects.
    bad = ref_of(world.publish(with_wrong_expectations(world.bundle, world.bundle.version + 5)))
    fleet.control.publish_metadata()
    install_all(fleet, ids, bad)
    for device in ids:
        failed = fleet.wait_event(device, "install.failed")
        assert failed[0].detail["version"] == bad.version
        assert "health check" in failed[0].detail["reason"]
    states = wait_all(fleet, ids, lambda s: s.slots["b"].status is SlotStatus.FAILED)
    assert all(states[d].active == first and states[d].status is Status.ONLINE for d in ids)
    summary = simulator.summary()
    assert summary["installs_failed"] == len(ids)
    assert summary["tuf_verifications"] == 2  # the first metadata, then the updated one
    assert summary["health_checks"] == 2  # once per bundle digest, for all devices


def test_rollback_returns_to_the_previous_bundle(fleet, simulator, versions):
    first, second = map(ref_of, versions)
    ids = [d.device for d in simulator.devices][:5]
    wait_all(fleet, ids, running(None))
    install_all(fleet, ids, first)
    wait_all(fleet, ids, running(first))
    install_all(fleet, ids, second)
    wait_all(fleet, ids, running(second))
    for device in ids:
        fleet.send(device, "rollback")
    states = wait_all(fleet, ids, running(first))
    assert all(states[d].slots["b"].status is SlotStatus.INSTALLED for d in ids)
    for device in ids:
        assert (
            fleet.wait_event(device, "rollback.done")[0]
            .detail["active"]
            .startswith(f"{first.name}-{first.version}")
        )


def telemetry_of(fleet: Fleet, device: str) -> list[Telemetry]:
    windows = [
        m.body.decode(m.topic)
        for m in list(fleet.reports.received)
        if m.device == device and isinstance(m.body, RawTelemetry)
    ]
    return [window for window in windows if window.profiles]


def test_telemetry_carries_profiles_and_drift_shifts_the_chosen_devices_only(
    fleet, world, sim_broker, versions
):
    first = ref_of(versions[0])
    drift = Drift(0.25, "income", 1e6)
    options = {"telemetry_every": 1.0, "rows_per_window": 40, "drift": (drift,)}
    with Simulator(config(world, sim_broker, **options)) as simulator:
        assert simulator.wait_online(TIMEOUT)
        ids = [d.device for d in simulator.devices]
        assert len(simulator.drifted) == DEVICES // 4
        install_all(fleet, ids, first)
        wait_all(fleet, ids, running(first))
        assert fleet.reports.wait_for(lambda _: all(telemetry_of(fleet, d) for d in ids), TIMEOUT)
    medians = {}
    for device in ids:
        window = telemetry_of(fleet, device)[0]
        assert window.bundle == first
        assert window.metrics["rows"] == 40 and window.metrics["errors"] == 0
        inputs = Profile.from_bytes(window.profiles["inputs"])
        outputs = Profile.from_bytes(window.profiles["outputs"])
        assert inputs.rows == outputs.rows == 40
        medians[device] = inputs.quantiles("income", [0.5])[0]
    drifted = {d: m for d, m in medians.items() if d in simulator.drifted}
    steady = {d: m for d, m in medians.items() if d not in simulator.drifted}
    assert min(drifted.values()) > 5e5 > max(steady.values())


def test_devices_that_lose_power_are_reported_offline_by_their_will(fleet, world, sim_broker):
    options = {"telemetry_every": 3600.0, "offline": Offline(0.1, 1.0)}
    with Simulator(config(world, sim_broker, **options)) as simulator:
        assert simulator.wait_online(TIMEOUT)
        gone = [d.device for d in simulator.offline]
        assert len(gone) == 2
        states = wait_all(fleet, gone, lambda s: s.status is Status.OFFLINE)
        assert all(states[d].reason == "connection lost" for d in gone)
        staying = [d.device for d in simulator.devices if d.device not in gone]
        assert simulator.wait_online(TIMEOUT, count=len(staying))
        assert all(latest_states(fleet)[d].status is Status.ONLINE for d in staying)


def test_the_command_runs_the_devices_for_its_duration_and_sums_up(fleet, world, sim_broker):
    ids = [f"sim-{i:04d}" for i in range(DEVICES)]
    credentials = write_credentials(
        {d: sim_broker.credentials.passwords[d] for d in ids}, world.tmp / "sim.passwords"
    )
    command = [
        EDGEWISE, "fleet", "simulate", "--devices", str(DEVICES),
        "--broker", f"mqtt://127.0.0.1:{sim_broker.port}",
        "--credentials", str(credentials), "--trust-root", str(world.tmp / "root.json"),
        "--label", "fleet=cli", "--label-spread", "site=berlin,paris,tokyo",
        "--duration", "4s", "--json",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert (summary["devices"], summary["online"]) == (DEVICES, DEVICES)
    assert summary["installs_done"] == summary["installs_failed"] == 0
    # A clean stop says offline for every device, as the agent does on SIGTERM.
    states = wait_all(fleet, ids, lambda s: s.status is Status.OFFLINE)
    assert states["sim-0002"].labels == {"fleet": "cli", "site": "tokyo"}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--drift", "half:income:3"], "expected FRACTION:COLUMN:SHIFT"),
        (["--offline", "0.1"], "expected FRACTION:AFTER"),
        (["--password-template", "secret"], "has no {device}"),
    ],
)
def test_the_command_refuses_malformed_options(arguments, message, world):
    root = str(world.tmp / "root.json")
    base = ["fleet", "simulate", "-n", "2", "--trust-root", root, "--password-template", "{device}"]
    result = CliRunner().invoke(main, [*base, *arguments])
    assert result.exit_code == 1, result.output
    assert message in result.output


def test_hundreds_of_devices_take_a_rollout_in_four_waves(fleet, world, sim_broker, versions):
    first = ref_of(versions[0])
    options = {"devices": SCALE_DEVICES, "telemetry_every": 10.0, "rows_per_window": 20}
    with Simulator(config(world, sim_broker, **options)) as simulator:
        assert simulator.wait_online(120.0)
        ids = [d.device for d in simulator.devices]
        sent = 0
        for share in (0.01, 0.1, 0.5, 1.0):
            wave = ids[sent : round(share * len(ids))]
            install_all(fleet, wave, first)
            wait_all(fleet, wave, running(first), timeout=120.0)
            sent += len(wave)
        summary = simulator.summary()
    assert summary["installs_done"] == SCALE_DEVICES and summary["installs_failed"] == 0
    assert summary["tuf_verifications"] == 1 and summary["health_checks"] == 1
