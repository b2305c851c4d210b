"""`edgewise agent run` as a real process against a real Mosquitto and a real control side:
signed installs over MQTT, rollback, rejected commands reported as events, clean shutdown, and
SIGKILL at every step of download and install."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fleet import (
    AgentProcess,
    Fleet,
    active_is,
    restarted_at,
    serving_fleet,
    start_fleet,
    two_versions,
)
from agent_support import ref_of, with_wrong_expectations
from trust_world import World

from edgewise.agent.commands import new_command, sign_command
from edgewise.agent.crashpoints import CRASH_ENV
from edgewise.agent.slots import SlotStore
from edgewise.transport import SlotStatus, Status
from edgewise.trust.keys import generate_key


@pytest.fixture
def versions(world: World) -> tuple[Path, Path]:
    return two_versions(world)


@pytest.fixture
def fleet(world: World, broker, versions) -> Iterator[Fleet]:
    yield from serving_fleet(world, broker, list(versions))


def test_signed_install_then_upgrade_then_rollback(fleet, agent, versions):
    first, second = map(ref_of, versions)
    agent.start()
    fleet.wait_state("dev-a", active_is(None))
    fleet.send("dev-a", "install", first)
    state = fleet.wait_state("dev-a", active_is(first))
    assert state.slots["a"].status is SlotStatus.ACTIVE
    fleet.send("dev-a", "install", second)
    state = fleet.wait_state("dev-a", active_is(second))
    assert (state.slots["a"].status, state.slots["b"].status) == (
        SlotStatus.INSTALLED,
        SlotStatus.ACTIVE,
    )
    # While the bytes travelled, the device said which slot they were going to.
    assert any(
        s.slots["b"].status is SlotStatus.DOWNLOADING and s.slots["b"].bundle == second
        for s in fleet.states("dev-a")
    )
    done = fleet.wait_event("dev-a", "install.done", count=2)
    assert done[-1].detail["health"]["max_abs_diff"] <= 1e-6
    fleet.send("dev-a", "rollback")
    fleet.wait_state("dev-a", active_is(first))
    fleet.wait_event("dev-a", "rollback.done")
    assert agent.terminate() == 0
    fleet.wait_state("dev-a", lambda s: s.status is Status.OFFLINE)


def test_a_device_several_root_rotations_behind_walks_the_chain_over_mqtt(
    fleet, agent, versions, world
):
    """Each rotation also replaces the timestamp key, so only a device that verified every root
    in turn trusts the current timestamp; the broker keeps every root version retained."""
    first = ref_of(versions[0])
    for rotation in (1, 2):
        keys = world.tmp / f"rotation-{rotation}"
        timestamp = generate_key(keys, "timestamp")
        root_keys = [world.public[f"root-{i}"] for i in (1, 2, 3)]
        world.repository(keys, world.keys).rotate_root(
            root_keys, role_keys={"timestamp": timestamp}
        )
    assert world.current("root") == 3
    fleet.control.publish_metadata()
    agent.start()
    fleet.wait_state("dev-a", active_is(None))
    fleet.send("dev-a", "install", first)
    fleet.wait_state("dev-a", active_is(first))
    assert agent.terminate() == 0


def test_bad_bundle_fails_its_health_check_and_the_old_one_keeps_serving(
    fleet, agent, versions, world
):
    first = ref_of(versions[0])
    broken = ref_of(world.publish(with_wrong_expectations(world.bundle, version=9)))
    fleet.control.publish_metadata()
    agent.start()
    fleet.wait_state("dev-a", active_is(None))
    fleet.send("dev-a", "install", first)
    fleet.wait_state("dev-a", active_is(first))
    fleet.send("dev-a", "install", broken)
    failed = fleet.wait_event("dev-a", "install.failed")[0]
    assert "scores differ from the expected ones" in failed.detail["reason"]
    state = fleet.wait_state(
        "dev-a", lambda s: s.active == first and s.slots["b"].status is SlotStatus.FAILED
    )
    assert "health check" in (state.reason or "")


def test_forged_commands_are_rejected_and_reported(fleet, agent, world, versions):
    first = ref_of(versions[0])
    agent.start()
    fleet.wait_state("dev-a", active_is(None))
    install = ("credit", first.version)
    cmd_topic = "edgewise/v1/devices/dev-a/cmd"
    forged = [
        sign_command(new_command("dev-a", "install", bundle=install), world.signer("targets")),
        sign_command(new_command("dev-b", "install", bundle=install), world.signer("operator")),
        sign_command(
            new_command("dev-a", "install", bundle=install, lifetime=-1), world.signer("operator")
        ),
        b'{"v": 1, "type": "command", "payload": "{}", "signatures": []}',
    ]
    for data in forged:
        fleet.control.connection.publish(cmd_topic, data).wait_for_publish(10)
    accepted = fleet.control.send(new_command("dev-a", "rollback", seq=10**15))
    fleet.control.connection.publish(cmd_topic, accepted).wait_for_publish(10)  # a replay
    rejected = fleet.wait_event("dev-a", "command.rejected", count=5)
    reasons = " | ".join(e.detail["reason"] for e in rejected)
    for expected in ("not an operator key", "addressed to device 'dev-b'", "expired"):
        assert expected in reasons
    assert "1 to 8 signatures" in reasons and "a replay" in reasons
    assert len(fleet.events("dev-a", "command.accepted")) == 1  # only the genuine rollback


CRASH_POINTS = [
    "download.chunk@2",
    "install.marked",
    "install.written",
    "install.verified",
    "install.checked",
    "pointer.written@2",
    "install.switched",
]


def test_agent_killed_during_download_and_install_restarts_into_a_whole_model(
    fleet, agent, versions
):
    old, new = map(ref_of, versions)
    agent.start()
    fleet.wait_state("dev-a", active_is(None))
    fleet.send("dev-a", "install", old)
    fleet.wait_state("dev-a", active_is(old))
    assert agent.terminate() == 0
    store = SlotStore(agent.state_dir)
    for point in CRASH_POINTS:
        since = restarted_at()
        agent.start(**{CRASH_ENV: point})
        fleet.wait_state("dev-a", active_is(old), since)
        fleet.send("dev-a", "install", new)
        assert agent.wait() == -9, point  # died where asked
        since = restarted_at()
        agent.start()
        # The first word of the restarted agent is the model it really serves: whole, verified.
        first_state = fleet.wait_state("dev-a", lambda s: s.status is Status.ONLINE, since)
        assert first_state.active in (old, new), point
        table = store.load()
        assert table.active_bundle in (old, new) and store.holds(table.active, table.active_bundle)
        # The interrupted install resumes and completes.
        fleet.wait_state("dev-a", active_is(new), since)
        rolled_back = restarted_at()
        fleet.send("dev-a", "rollback")
        fleet.wait_state("dev-a", active_is(old), rolled_back)
        assert agent.terminate() == 0, point


def test_agent_installs_over_tls(world, tls_broker, versions, tmp_path):
    first = ref_of(versions[0])
    fleet, connection = start_fleet(world, tls_broker, list(versions))
    agent = AgentProcess(tmp_path / "tls", tls_broker, world)
    try:
        agent.start()
        fleet.wait_state("dev-a", active_is(None))
        fleet.send("dev-a", "install", first)
        fleet.wait_state("dev-a", active_is(first))
    finally:
        agent.kill()
        connection.stop()
