"""The rollout engine: moves every rollout on, wave by wave, and halts the ones that go wrong.

`RolloutEngine.tick` is called about once a second. It keeps nothing that matters in memory:
each tick reads the rollouts, their devices and what the devices reported from the store,
decides, and writes back, so it is idempotent and a new engine over the same store carries on
where the last one stopped. A device is claimed in the store (``pending`` -> ``sent``) before
its command goes out and only a claimed device is sent one, so a command is never sent twice;
a crash between the claim and the send leaves a device that the install timeout then fails.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ...agent.commands import Command, new_command
from ...exceptions import EdgewiseError, RolloutError
from ..audit import AuditLog
from ..selector import Selector
from ..store import Device, Rollout, RolloutDevice, Store
from .gates import DriftProbe, Verdict, failure_verdict, health_verdict
from .observe import Sight, bundle_text, observe, reported
from .policy import Rate, RolloutPolicy
from .progress import wave_progress

__all__ = ["ENGINE_ACTOR", "DriftProbe", "RolloutEngine"]

log = logging.getLogger(__name__)

#: The actor the audit log names for what the engine decides by itself (halts).
ENGINE_ACTOR = "rollout-engine"
#: How often the drift and error gates are checked while a wave is still installing or dwelling
#: (always when it is ready to advance): the drift probe merges profiles and is not free.
GATE_INTERVAL = 10.0

Rows = dict[str, RolloutDevice]
Fleet = Mapping[str, Device]


class RolloutEngine:
    def __init__(
        self,
        store: Store,
        send: Callable[[Command], object],
        drift: DriftProbe,
        known_bundle: Callable[[str, int], bool],
        *,
        clock: Callable[[], float] = time.time,
        gate_interval: float = GATE_INTERVAL,
    ) -> None:
        self.store = store
        self.send = send
        self.drift = drift
        self.known_bundle = known_bundle
        self.clock = clock
        self.gate_interval = gate_interval
        self._gates_checked: dict[tuple[int, int], float] = {}

    def tick(self, now: float | None = None) -> None:
        """Move every rollout with work left one step on."""
        now = self.clock() if now is None else now
        rollouts = self.store.rollouts_to_tick()
        if not rollouts:
            return
        fleet = {device.id: device for device in self.store.devices()}  # read once per tick
        for rollout in rollouts:
            try:
                self._tick(rollout, fleet, now)
            except EdgewiseError:
                # One rollout's trouble (a store hiccup) must not stop the others; the next
                # tick tries again from what the store holds.
                log.exception("rollout %d: tick failed", rollout.id)

    def _tick(self, rollout: Rollout, fleet: Fleet, now: float) -> None:
        policy = RolloutPolicy.from_json(rollout.policy)
        rows = {row.device_id: row for row in self.store.rollout_devices(rollout.id)}
        if rollout.state in ("running", "paused") and self._include_new_devices(
            rollout, rows, fleet, now
        ):
            rows = {row.device_id: row for row in self.store.rollout_devices(rollout.id)}
        rows = self._observe(rollout, policy, rows, fleet, now)
        if rollout.state in ("running", "paused"):
            rollout = self._check_failures(rollout, policy, rows, now)
        if rollout.state == "running" and not self.known_bundle(*rollout.bundle):
            rollout = self._halt(
                rollout,
                policy,
                f"{bundle_text(rollout.bundle)} is no longer a target of the repository",
                now,
            )
        if rollout.state == "running":
            self._dispatch(rollout, policy, rows, fleet, now)
        if rollout.state in ("running", "paused"):  # paused: the gates still watch
            advanced = self._evaluate_wave(rollout, policy, rows, fleet, now)
            if advanced.state == "running" and advanced.wave != rollout.wave:
                # The next wave starts now, not a tick later.
                rows = {row.device_id: row for row in self.store.rollout_devices(rollout.id)}
                self._dispatch(advanced, policy, rows, fleet, now)
            rollout = advanced
        if rollout.rollback is not None:  # in the tick that halted it, too
            self._roll_back(rollout, rows, fleet, now)

    def _include_new_devices(self, rollout: Rollout, rows: Rows, fleet: Fleet, now: float) -> bool:
        """Devices that appeared or came to match the selector join the wave in progress;
        whether there were any."""
        selector = Selector.parse(rollout.selector)
        newcomers = [
            (device.id, rollout.wave)
            for device in fleet.values()
            if device.id not in rows and selector.matches(device.labels)
        ]
        if newcomers:
            self.store.add_rollout_devices(rollout.id, newcomers, now)
        return bool(newcomers)

    def _observe(
        self, rollout: Rollout, policy: RolloutPolicy, rows: Rows, fleet: Fleet, now: float
    ) -> Rows:
        answers: dict[str, list[Any]] = {}
        for event in self.store.rollout_answers(rollout.id):
            answers.setdefault(event.device_id, []).append(event)
        changes = {}
        for device_id, row in rows.items():
            sight = Sight(
                fleet.get(device_id),
                answers.get(device_id, []),
                rollout.bundle,
                policy.install_timeout,
                now,
            )
            change = observe(row, sight)
            if change is not None:
                changes[device_id] = change
        if changes:
            self.store.update_rollout_devices(rollout.id, changes, now)
        return {
            device_id: replace(row, **changes[device_id], updated_at=now)
            if device_id in changes
            else row
            for device_id, row in rows.items()
        }

    def _check_failures(
        self, rollout: Rollout, policy: RolloutPolicy, rows: Rows, now: float
    ) -> Rollout:
        verdict = failure_verdict(policy, list(rows.values()), rollout.wave)
        return (
            rollout
            if verdict.tripped is None
            else self._halt(rollout, policy, verdict.tripped, now)
        )

    def _halt(self, rollout: Rollout, policy: RolloutPolicy, reason: str, now: float) -> Rollout:
        log.warning("rollout %d halted: %s", rollout.id, reason)
        audit = AuditLog.prepare(
            ENGINE_ACTOR, "rollout.halt", {"rollout": rollout.id, "reason": reason}
        )
        try:
            return self.store.change_rollout(
                rollout.id,
                now,
                allowed_from=("running", "paused"),
                audit=audit,
                state="halted",
                reason=reason,
                rollback="wave" if policy.auto_rollback else None,
            )
        except RolloutError:  # an operator stopped it meanwhile: theirs is the last word
            return self._current(rollout)

    def _current(self, rollout: Rollout) -> Rollout:
        current = self.store.rollout(rollout.id)
        assert current is not None  # rollouts are never deleted
        return current

    def _dispatch(
        self, rollout: Rollout, policy: RolloutPolicy, rows: Rows, fleet: Fleet, now: float
    ) -> None:
        """Send install commands to the pending devices of the waves started so far (earlier
        waves' deferred ones too) that are online, within the rate; note why the others wait."""
        pending = [
            row for row in rows.values() if row.wave <= rollout.wave and row.state == "pending"
        ]
        notes: dict[str, dict[str, Any]] = {}
        ready = []
        for row in pending:
            device = fleet.get(row.device_id)
            if reported(device) == rollout.bundle:
                notes[row.device_id] = {
                    "state": "skipped",
                    "reason": f"already runs {bundle_text(rollout.bundle)}",
                    "switched_at": now,
                }
            elif device is None or not device.online:
                notes[row.device_id] = {"state": "pending", "reason": "offline; sent when back"}
            else:
                ready.append(row)
        budget = len(ready) if policy.rate is None else self._budget(rollout, policy.rate, now)
        for row in ready[budget:]:
            notes[row.device_id] = {"state": "pending", "reason": "waiting for the --rate limit"}
        changed = {
            device_id: change
            for device_id, change in notes.items()
            if (change["state"], change["reason"])
            != (rows[device_id].state, rows[device_id].reason)
        }
        if changed:
            self.store.update_rollout_devices(rollout.id, changed, now)
        commands = {
            row.device_id: new_command(row.device_id, "install", bundle=rollout.bundle)
            for row in ready[:budget]
        }
        claims = {
            device_id: {
                "state": "sent",
                "reason": f"install command {command.seq} sent",
                "sent_at": now,
                "seq": command.seq,
                "previous_name": fleet[device_id].bundle_name,
                "previous_version": fleet[device_id].bundle_version,
            }
            for device_id, command in commands.items()
        }
        self._send_claimed(rollout, commands, claims, "pending", now)

    def _budget(self, rollout: Rollout, rate: Rate, now: float) -> int:
        """How many install commands may go out now: the rate counts those of the last
        period, as stored, so a restart does not reset it."""
        return max(0, rate.count - self.store.install_commands_since(rollout.id, now - rate.period))

    def _send_claimed(
        self,
        rollout: Rollout,
        commands: Mapping[str, Command],
        claims: Mapping[str, Mapping[str, Any]],
        from_state: str,
        now: float,
    ) -> None:
        """Claim the devices, then send each claimed one its command; a device whose send
        fails goes back to `from_state`, to be tried again at the next tick."""
        if not claims:
            return
        sent_column = "sent_at" if from_state == "pending" else "rollback_sent_at"
        failed: dict[str, dict[str, Any]] = {}
        for device_id in self.store.claim_rollout_devices(
            rollout.id, claims, now, from_state=from_state, rollout_states=(rollout.state,)
        ):
            try:
                self.send(commands[device_id])
            except Exception as exc:  # whatever the transport raises: retried next tick
                log.warning("rollout %d: sending to %s failed: %s", rollout.id, device_id, exc)
                failed[device_id] = {
                    "state": from_state,
                    "reason": f"sending the command failed ({exc}); retrying",
                    sent_column: None,
                }
        if failed:
            self.store.update_rollout_devices(rollout.id, failed, now)

    def _roll_back(self, rollout: Rollout, rows: Rows, fleet: Fleet, now: float) -> None:
        """Send a rollback to each device in the rollback's scope that installed the bundle
        (online ones; the others when they are back)."""
        due = [
            row
            for row in rows.values()
            if row.state == "succeeded"
            and (rollout.rollback == "all" or row.wave == rollout.wave)
            and (device := fleet.get(row.device_id)) is not None
            and device.online
        ]
        commands = {row.device_id: new_command(row.device_id, "rollback") for row in due}
        claims = {
            row.device_id: {
                "state": "rolling_back",
                "reason": f"rollback command {commands[row.device_id].seq} sent "
                f"(back to {bundle_text(row.previous)})",
                "rollback_sent_at": now,
            }
            for row in due
        }
        self._send_claimed(rollout, commands, claims, "succeeded", now)

    def _evaluate_wave(
        self, rollout: Rollout, policy: RolloutPolicy, rows: Rows, fleet: Fleet, now: float
    ) -> Rollout:
        """Advance the wave (of a running rollout) once its devices are settled, the new
        bundle ran for the dwell time and the gates pass; halt if a gate trips. The rollout as
        it is then."""
        wave = self.store.rollout_waves(rollout.id)[rollout.wave]
        wave_rows = [row for row in rows.values() if row.wave == rollout.wave]
        progress = wave_progress(wave_rows, fleet, wave.started_at, policy, now)
        ready = progress.settled and rollout.state == "running"
        verdict = Verdict()
        key = (rollout.id, rollout.wave)
        due = now - self._gates_checked.get(key, -math.inf) >= self.gate_interval
        if ready or due:
            self._gates_checked[key] = now
            verdict = health_verdict(
                policy,
                self.store,
                self.drift,
                rollout.id,
                rollout.bundle,
                rollout.wave,
                progress.running,
            )
            if verdict.tripped is not None:
                return self._halt(rollout, policy, verdict.tripped, now)
        if ready and verdict.waiting is None:
            self._gates_checked.pop(key, None)
            return self.store.advance_rollout(rollout.id, rollout.wave, now)
        if progress.reason:
            reason = progress.reason
        elif verdict.waiting is not None:
            reason = f"waiting for the gates: {verdict.waiting}"
        else:
            reason = "settled; the rollout is paused"
        if reason != wave.reason:
            self.store.set_wave_reason(rollout.id, rollout.wave, reason)
        return rollout
