"""Rollouts to real `edgewise agent run` processes over a real Mosquitto: the engine sends
operator-signed commands through the control side, and what the agents publish is written to
the store by the real registry. A good bundle completes; a drifting one halts and is
rolled back on the canary; a broken one fails its health check on the canary and halts.
tests/test_control_service.py runs the same story through `edgewise control run`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fleet import AgentProcess, Fleet, active_is, start_fleet
from agent_support import ref_of, with_wrong_expectations
from mqtt_broker import Broker
from trust_world import World, variant

from edgewise.fleet.registry import Registry
from edgewise.fleet.rollouts import RolloutEngine, RolloutPolicy, start_rollout
from edgewise.fleet.rollouts.catalogue import repository_catalogue
from edgewise.fleet.selector import Selector
from edgewise.fleet.store import Rollout, Store
from edgewise.transport import Event, State

DEVICES = ("dev-a", "dev-b")
ROLLOUT_TIMEOUT = 120.0  # seconds: two installs on a loaded 2-core machine


class Reports:
    """Hands what the agents published to the real registry, as the control plane's ingest
    does, whenever the test catches up."""

    def __init__(self, fleet: Fleet, store: Store) -> None:
        self.fleet = fleet
        self.registry = Registry(store)
        self.seen = 0

    def catch_up(self) -> None:
        received = list(self.fleet.reports.received)
        batch = [
            (inbound.device, inbound.body)
            for inbound in received[self.seen :]
            if inbound.device is not None and isinstance(inbound.body, State | Event)
        ]
        self.registry.record(batch)
        self.seen = len(received)


@pytest.fixture
def bundles(world: World) -> dict[str, Path]:
    return {
        "good": world.publish(),
        "drifting": world.publish(variant(world.bundle, version=world.bundle.version + 1)),
        "broken": world.publish(with_wrong_expectations(world.bundle, version=9)),
    }


@pytest.fixture
def fleet(world: World, broker: Broker, bundles: dict[str, Path]) -> Iterator[Fleet]:
    fleet, connection = start_fleet(world, broker, list(bundles.values()))
    yield fleet
    connection.stop()


@pytest.fixture
def agents(tmp_path: Path, broker: Broker, world: World, fleet: Fleet) -> Iterator[None]:
    processes = [AgentProcess(tmp_path / device, broker, world, device) for device in DEVICES]
    try:
        for process in processes:
            process.start()
        for device in DEVICES:
            fleet.wait_state(device, active_is(None))
        yield
    finally:
        for process in processes:
            process.kill()


@pytest.mark.usefixtures("agents")
def test_rollouts_to_real_agents(
    fleet: Fleet, world: World, bundles: dict[str, Path], tmp_path: Path
) -> None:
    psi = {"psi": 0.05}
    with Store.open(tmp_path / "control.db") as store:
        registry = Reports(fleet, store)
        registry.catch_up()
        for device in DEVICES:
            store.update_labels(device, {"site": "lab"})
        engine = RolloutEngine(
            store,
            fleet.control.send,
            lambda bundle, devices, since: psi,
            repository_catalogue(world.repo),
        )

        def run(bundle: Path, until: set[str], **policy: object) -> Rollout:
            ref = ref_of(bundle)
            options = {"waves": "50%,100%", "dwell": "0", "install_timeout": "60s", **policy}
            rollout = start_rollout(
                store,
                (ref.name, ref.version),
                Selector.parse("site=lab"),
                RolloutPolicy.parse(**options),
                actor="test",
                statement={},
                signature=None,
                now=time.time(),
            )
            deadline = time.monotonic() + ROLLOUT_TIMEOUT
            while time.monotonic() < deadline:
                registry.catch_up()
                engine.tick()
                current = store.rollout(rollout.id)
                assert current is not None
                if current.state in until and not _in_flight(store, rollout.id):
                    return current
                time.sleep(0.2)
            raise AssertionError(
                f"rollout {rollout.id} did not end: {store.rollout_devices(rollout.id)}"
            )

        good = run(bundles["good"], {"completed"})
        assert {d.state for d in store.rollout_devices(good.id)} == {"succeeded"}
        assert {store.device(d).bundle_version for d in DEVICES} == {3}

        psi["psi"] = 0.5
        drifting = run(bundles["drifting"], {"halted"}, drift_gates=["psi<0.2"], auto_rollback=True)
        assert drifting.reason is not None and drifting.reason.startswith("drift gate psi<0.2")
        states = {d.device_id: (d.wave, d.state) for d in store.rollout_devices(drifting.id)}
        assert sorted(states.values()) == [(0, "rolled_back"), (1, "pending")]
        assert {store.device(d).bundle_version for d in DEVICES} == {3}

        broken = run(bundles["broken"], {"halted"})
        rows = {d.wave: d for d in store.rollout_devices(broken.id)}
        assert rows[0].state == "failed" and rows[1].state == "pending"
        assert rows[0].reason is not None and "scores differ" in rows[0].reason
        assert {store.device(d).bundle_version for d in DEVICES} == {3}


def _in_flight(store: Store, rollout_id: int) -> bool:
    return any(
        d.state in ("sent", "installing", "rolling_back") for d in store.rollout_devices(rollout_id)
    )
