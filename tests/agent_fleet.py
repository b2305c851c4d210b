"""A real agent process and a real control side around a real Mosquitto, for agent tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agent_support import ref_of
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Collector
from trust_world import World, variant

from edgewise.agent.commands import Command, new_command
from edgewise.agent.config import env_name
from edgewise.fleet import ControlSide
from edgewise.transport import BundleRef, Connection, Event, Inbound, State, Status
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.topics import Kind, all_devices

EDGEWISE = str(Path(sys.executable).parent / "edgewise")
AGENT_TIMEOUT = 60.0  # seconds for an agent to install, stop or die; a loaded 2-core machine


class AgentProcess:
    """`edgewise agent run` for one device, with its configuration file and log."""

    def __init__(self, directory: Path, broker: Broker, world: World, device: str = "dev-a"):
        self.directory = directory
        self.device = device
        self.state_dir = directory / "state"
        self.config = directory / "agent.toml"
        self.log = directory / "agent.log"
        directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    f'device_id = "{device}"',
                    f'state_dir = "{self.state_dir}"',
                    f'trust_root = "{world.tmp / "root.json"}"',
                    "telemetry_window = 1.0",
                    "[labels]",
                    'site = "lab"',
                    "[broker]",
                    *self._broker_lines(broker),
                    "keepalive = 10",
                    "backoff_initial = 0.2",
                    "backoff_max = 1.0",
                    "[transfer]",
                    "chunk_size = 4096",
                    "request_timeout = 3.0",
                    "[server]",
                    "port = 0",
                    "",
                ]
            )
        )
        # The secret comes from the environment, as on a device with a credentials store.
        self.env = {
            **os.environ,
            env_name("broker.password"): broker.credentials.passwords[device],
        }
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _broker_lines(broker: Broker) -> list[str]:
        if broker.certificates is None:
            return [f'url = "mqtt://127.0.0.1:{broker.port}"']
        return [
            f'url = "mqtts://127.0.0.1:{broker.port}"',
            f'ca_file = "{broker.certificates.ca}"',
        ]

    def start(self, **env: str) -> AgentProcess:
        assert self.process is None or self.process.poll() is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [EDGEWISE, "agent", "run", "--config", str(self.config)],
                env={**self.env, **env},
                stdout=log,
                stderr=log,
            )
        return self

    def wait(self, timeout: float = AGENT_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(AGENT_TIMEOUT)


@dataclass
class Fleet:
    """The control side (metadata, chunks, signed commands) and what devices report."""

    world: World
    control: ControlSide
    reports: Collector

    def send(self, device: str, action: str, bundle: BundleRef | None = None) -> Command:
        target = None if bundle is None else (bundle.name, bundle.version)
        command = new_command(device, action, bundle=target)
        self.control.send(command)
        return command

    def states(self, device: str, since: float = 0.0) -> list[State]:
        return [
            m.body
            for m in self._received(device, Kind.STATE)
            if isinstance(m.body, State) and m.body.ts >= since
        ]

    def events(self, device: str, name: str | None = None) -> list[Event]:
        return [
            m.body
            for m in self._received(device, Kind.EVENTS)
            if isinstance(m.body, Event) and (name is None or m.body.name == name)
        ]

    def _received(self, device: str, kind: Kind) -> list[Inbound]:
        return [m for m in list(self.reports.received) if m.device == device and m.kind is kind]

    def wait_state(
        self,
        device: str,
        check: Callable[[State], bool],
        since: float = 0.0,
        timeout: float = AGENT_TIMEOUT,
    ) -> State:
        """The first state of `device` published at or after `since` that passes `check`."""

        def found(_: list[Inbound]) -> bool:
            return any(check(s) for s in self.states(device, since))

        assert self.reports.wait_for(found, timeout), (
            f"no such state; latest: {self.states(device)[-3:]}"
        )
        return next(s for s in self.states(device, since) if check(s))

    def wait_event(self, device: str, name: str, count: int = 1) -> list[Event]:
        def found(_: list[Inbound]) -> bool:
            return len(self.events(device, name)) >= count

        assert self.reports.wait_for(found, AGENT_TIMEOUT), (
            f"no {name} event; got {[(e.name, e.detail) for e in self.events(device)]}"
        )
        return self.events(device, name)


def active_is(bundle: BundleRef | None) -> Callable[[State], bool]:
    return lambda state: state.status is Status.ONLINE and state.active == bundle


def start_fleet(world: World, broker: Broker, bundles: list[Path]) -> tuple[Fleet, Connection]:
    """Publish `bundles`, then connect the control side and a collector of every report."""
    reports = Collector()
    connection = Connection(CONTROL_USER, broker.settings(CONTROL_USER))
    for kind in (Kind.STATE, Kind.EVENTS, Kind.TELEMETRY):
        connection.subscribe(all_devices(kind), reports)
    control = ControlSide(connection, world.repo, world.signer("operator")).start()
    connection.start()
    assert connection.wait_connected(DELIVERY_TIMEOUT)
    control.publish_metadata()
    assert all(ref_of(path) for path in bundles)
    return Fleet(world, control, reports), connection


def two_versions(world: World) -> tuple[Path, Path]:
    """The world's bundle published as two consecutive versions."""
    first = world.publish()
    second = world.publish(variant(world.bundle, version=world.bundle.version + 1))
    return first, second


def serving_fleet(world: World, broker: Broker, bundles: list[Path]) -> Iterator[Fleet]:
    """`start_fleet` for a fixture: the control side runs until the test ends."""
    fleet, connection = start_fleet(world, broker, bundles)
    yield fleet
    connection.stop()


def restarted_at() -> float:
    """A timestamp just before a (re)start: states published after it are the new process's."""
    return time.time() - 0.001
