"""A fleet in a real store for rollout tests: devices report exactly the way the registry
records their retained state and events, commands are recorded instead of published, and the
clock is the test's."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgewise.agent.commands import Command
from edgewise.fleet.rollouts import RolloutEngine, RolloutPolicy, start_rollout
from edgewise.fleet.selector import Selector
from edgewise.fleet.store import DeviceEvent, Rollout, Store, TelemetryWindow

OLD = ("credit", 2)
NEW = ("credit", 3)
T0 = 1_700_000_000.0


@dataclass
class Fleet:
    store: Store
    now: float = T0
    sent: list[Command] = field(default_factory=list)
    drift_values: dict[str, float] | None = None
    drift_calls: list[tuple[tuple[str, int], frozenset[str], float]] = field(default_factory=list)
    known: bool = True

    def engine(self) -> RolloutEngine:
        return RolloutEngine(
            self.store, self.sent.append, self.drift, self.known_bundle, clock=lambda: self.now
        )

    def drift(
        self, bundle: tuple[str, int], devices: Collection[str], since: float
    ) -> Mapping[str, float] | None:
        self.drift_calls.append((bundle, frozenset(devices), since))
        return self.drift_values

    def known_bundle(self, name: str, version: int) -> bool:
        return self.known

    def add(
        self,
        count: int,
        *,
        prefix: str = "d",
        site: str = "berlin",
        online: bool = True,
        bundle: tuple[str, int] = OLD,
    ) -> list[str]:
        ids = [f"{prefix}{index:03d}" for index in range(count)]
        for device_id in ids:
            self.store.upsert_device(device_id, online=online, last_seen=self.now, bundle=bundle)
            self.store.update_labels(device_id, {"site": site})
        return ids

    def start(self, selector: str = "site=berlin", **options: Any) -> Rollout:
        options.setdefault("dwell", "0")
        return start_rollout(
            self.store,
            NEW,
            Selector.parse(selector),
            RolloutPolicy.parse(**options),
            actor="alice",
            statement={"test": True},
            signature=None,
            now=self.now,
        )

    def begin(self, count: int, **options: Any) -> tuple[Rollout, RolloutEngine]:
        """`count` devices in berlin, a rollout to them, an engine, and its first tick."""
        self.add(count)
        rollout = self.start(**options)
        engine = self.engine()
        engine.tick()
        return rollout, engine

    def installs(self) -> list[str]:
        return [command.device for command in self.sent if command.action == "install"]

    def rollbacks(self) -> list[str]:
        return [command.device for command in self.sent if command.action == "rollback"]

    def event(self, device_id: str, kind: str, **detail: Any) -> None:
        self.store.record_event(DeviceEvent(device_id, kind, self.now, detail))

    def installed(self, device_id: str, bundle: tuple[str, int] = NEW) -> None:
        """What the agent does after a good install: its state shows the bundle, then it says
        install.done."""
        self.event(device_id, "command.accepted", seq=1, action="install")
        self.store.upsert_device(device_id, bundle=bundle, last_seen=self.now)
        self.event(device_id, "install.done", bundle=bundle[0], version=bundle[1], slot="b")

    def install_failed(self, device_id: str, reason: str = "health check failed") -> None:
        self.event(device_id, "install.failed", bundle=NEW[0], version=NEW[1], reason=reason)

    def rolled_back(self, device_id: str, to: tuple[str, int] = OLD) -> None:
        self.store.upsert_device(device_id, bundle=to, last_seen=self.now)
        self.event(device_id, "rollback.done", active=f"{to[0]}-{to[1]} (slot a)")

    def telemetry(self, device_id: str, count: int, errors: int) -> None:
        self.store.record_telemetry(
            TelemetryWindow(device_id, NEW[0], NEW[1], self.now, self.now + 60, count, errors)
        )

    def states(self, rollout_id: int) -> dict[str, str]:
        return {row.device_id: row.state for row in self.store.rollout_devices(rollout_id)}

    def waves(self, rollout_id: int) -> list[tuple[str, str | None]]:
        return [(wave.state, wave.reason) for wave in self.store.rollout_waves(rollout_id)]

    def wave_of(self, rollout_id: int) -> dict[str, int]:
        return {row.device_id: row.wave for row in self.store.rollout_devices(rollout_id)}

    def rollout(self, rollout_id: int) -> Rollout:
        rollout = self.store.rollout(rollout_id)
        assert rollout is not None
        return rollout
