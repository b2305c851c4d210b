"""The rollout engine against a real store (SQLite and PostgreSQL) with the test's clock.

Devices answer the way the registry will record them: `upsert_device` with the bundle the
device's retained state shows, `record_event` with the events the agent emits."""

from __future__ import annotations

import pytest
from rollout_world import NEW, OLD, Fleet

from edgewise.exceptions import RolloutError
from edgewise.fleet.audit import AuditLog
from edgewise.fleet.rollouts import abort_rollout, pause_rollout, resume_rollout
from edgewise.fleet.rollouts.policy import RolloutPolicy
from edgewise.fleet.rollouts.waves import assign_waves
from edgewise.fleet.store import Store


@pytest.fixture
def fleet(store: Store) -> Fleet:
    return Fleet(store)


def test_waves_are_sized_from_the_policy_and_stable(fleet: Fleet) -> None:
    ids = fleet.add(100)
    rollout = fleet.start(waves="1%,10%,50%,100%")
    waves = fleet.wave_of(rollout.id)
    assert [list(waves.values()).count(wave) for wave in range(4)] == [1, 9, 40, 50]
    policy = RolloutPolicy.parse(waves="1%,10%,50%,100%")
    assert dict(assign_waves(rollout.id, reversed(ids), policy)) == waves
    # Another rollout picks other canaries, so no device is always first.
    assert assign_waves(rollout.id + 1, ids, policy) != assign_waves(rollout.id, ids, policy)
    assert [wave.size for wave in fleet.store.rollout_waves(rollout.id)] == [
        "1%",
        "10%",
        "50%",
        "100%",
    ]


def test_a_four_wave_rollout_to_100_devices_completes(fleet: Fleet) -> None:
    fleet.add(100)
    fleet.add(5, prefix="paris", site="paris")
    rollout = fleet.start(waves="1%,10%,50%,100%")
    engine = fleet.engine()
    waves = fleet.wave_of(rollout.id)
    answered: set[str] = set()
    for step in range(20):
        engine.tick()
        new = set(fleet.installs()) - answered
        for device_id in sorted(new):
            fleet.installed(device_id)
        answered |= new
        fleet.now += 1
        if fleet.rollout(rollout.id).state == "completed":
            break
        # Never a device of a wave beyond the one in progress.
        current = fleet.rollout(rollout.id).wave
        assert all(waves[device_id] <= current for device_id in answered), step
    assert fleet.rollout(rollout.id).state == "completed"
    assert sorted(fleet.installs()) == sorted(waves)  # each once, no paris device
    assert set(fleet.states(rollout.id).values()) == {"succeeded"}
    assert [state for state, _ in fleet.waves(rollout.id)] == ["succeeded"] * 4


def test_a_failed_canary_halts_and_the_next_wave_gets_nothing(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(100, waves="1%,10%,100%", max_failure_rate="5%")
    [canary] = fleet.installs()
    fleet.install_failed(canary, "health check: 3 of 20 rows differ")
    fleet.now += 1
    engine.tick()
    halted = fleet.rollout(rollout.id)
    assert halted.state == "halted"
    assert halted.reason == (
        "failure rate 1/1 devices (100%) in wave 1 is above --max-failure-rate 5%"
    )
    assert fleet.states(rollout.id)[canary] == "failed"
    [row] = [r for r in fleet.store.rollout_devices(rollout.id) if r.device_id == canary]
    assert row.reason == "install failed: health check: 3 of 20 rows differ"
    assert fleet.waves(rollout.id)[0][0] == "halted"
    for _ in range(3):
        fleet.now += 60
        engine.tick()
    assert fleet.installs() == [canary]
    assert [entry.action for entry in AuditLog(fleet.store).entries()] == [
        "rollout.start",
        "rollout.halt",
    ]


def test_failures_below_the_threshold_do_not_halt(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(20, waves="100%", max_failure_rate="10%")
    first, second, *rest = fleet.installs()
    fleet.install_failed(first)
    for device_id in rest:
        fleet.installed(device_id)
    fleet.event(second, "command.rejected", reason="expired 3s ago")
    engine.tick()
    assert fleet.rollout(rollout.id).state == "completed"  # 2 of 20 is 10%, not above
    assert fleet.states(rollout.id)[second] == "failed"


def test_auto_rollback_returns_the_halted_wave_only(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(20, waves="25%,100%", max_failure_rate="5%", auto_rollback=True)
    wave = fleet.installs()
    assert len(wave) == 5
    for device_id in wave[:3]:
        fleet.installed(device_id)
    fleet.install_failed(wave[3])  # wave[4] is still installing
    engine.tick()
    assert fleet.rollout(rollout.id).state == "halted"
    assert sorted(fleet.rollbacks()) == sorted(wave[:3])
    # The one still installing finishes: it runs the bad bundle, so it goes back too.
    fleet.installed(wave[4])
    fleet.now += 1
    engine.tick()
    assert sorted(fleet.rollbacks()) == sorted(wave[:3] + wave[4:])
    for device_id in [*wave[:3], wave[4]]:
        fleet.rolled_back(device_id)
    fleet.now += 1
    engine.tick()
    states = fleet.states(rollout.id)
    assert [states[device_id] for device_id in wave] == ["rolled_back"] * 3 + [
        "failed",
        "rolled_back",
    ]
    assert len(fleet.installs()) == 5  # the second wave received nothing
    assert fleet.store.rollouts_to_tick() == []  # nothing left to follow


def test_a_failed_rollback_is_reported(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(4, waves="50%,100%", auto_rollback=True)
    good, bad = fleet.installs()
    fleet.installed(good)
    fleet.install_failed(bad)
    engine.tick()
    assert fleet.rollbacks() == [good]
    fleet.event(good, "rollback.failed", reason="slot a is empty")
    engine.tick()
    [row] = [r for r in fleet.store.rollout_devices(rollout.id) if r.device_id == good]
    assert (row.state, row.reason) == ("failed", "rollback failed: slot a is empty")


def test_a_drift_gate_holds_the_wave_then_halts(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(
        10, waves="20%,100%", drift_gates=["psi<0.2", "js<0.1"], auto_rollback=True
    )
    canaries = fleet.installs()
    switched = fleet.now
    for device_id in canaries:
        fleet.installed(device_id)
    engine.tick()  # no telemetry yet: the wave waits for it
    assert fleet.rollout(rollout.id).state == "running"
    assert fleet.waves(rollout.id)[0] == (
        "running",
        "waiting for the gates: no psi drift data yet; no js drift data yet",
    )
    assert fleet.drift_calls[-1] == (NEW, frozenset(canaries), switched)
    fleet.drift_values = {"psi": 0.31, "js": 0.02}
    fleet.now += 10
    engine.tick()
    halted = fleet.rollout(rollout.id)
    assert halted.state == "halted"
    assert halted.reason == (
        "drift gate psi<0.2 tripped: psi 0.31 on wave 1 (2 devices on the new bundle)"
    )
    assert len(fleet.installs()) == 2
    assert sorted(fleet.rollbacks()) == sorted(canaries)  # in the tick that halted it


def test_a_passing_drift_gate_lets_the_wave_advance(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="20%,100%", drift_gates=["psi<=0.2"])
    for device_id in fleet.installs():
        fleet.installed(device_id)
    fleet.drift_values = {"psi": 0.2}
    engine.tick()
    assert fleet.rollout(rollout.id).wave == 1
    assert len(fleet.installs()) == 10  # the next wave is sent its commands in the same tick


def test_an_error_gate_counts_requests_since_the_switch(fleet: Fleet) -> None:
    fleet.add(10)
    rollout = fleet.start(waves="20%,100%", error_gate="error_rate<2%", dwell="5m")
    engine = fleet.engine()
    fleet.telemetry("d000", 1000, 900)  # before the rollout: another bundle's story
    engine.tick()
    canaries = fleet.installs()
    fleet.now += 5
    for device_id in canaries:
        fleet.installed(device_id)
    engine.tick()
    fleet.now += 60
    fleet.telemetry(canaries[0], 100, 1)
    fleet.telemetry(canaries[1], 100, 1)
    engine.tick()
    assert fleet.rollout(rollout.id).state == "running"  # 1% so far, dwelling
    assert fleet.waves(rollout.id)[0][1] == "dwelling until 2023-11-14 22:18:25Z"
    fleet.now += 60
    fleet.telemetry(canaries[1], 100, 18)
    fleet.now += 10
    engine.tick()
    halted = fleet.rollout(rollout.id)
    assert (halted.state, halted.reason) == (
        "halted",
        "error gate error_rate<2% tripped: error rate 6.667% (20 errors in 300 requests) on "
        "wave 1 (2 devices on the new bundle)",
    )


def test_dwell_holds_a_wave_until_its_devices_ran_long_enough(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="20%,100%", dwell="10m")
    for device_id in fleet.installs():
        fleet.installed(device_id)
    engine.tick()
    fleet.now += 599
    engine.tick()
    assert fleet.rollout(rollout.id).wave == 0
    fleet.now += 1
    engine.tick()
    assert fleet.rollout(rollout.id).wave == 1


def test_rate_limit_spreads_the_commands(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(25, waves="100%", rate="10/min")
    assert len(fleet.installs()) == 10
    waiting = [r.reason for r in fleet.store.rollout_devices(rollout.id) if r.state == "pending"]
    assert waiting == ["waiting for the --rate limit"] * 15
    fleet.now += 59
    engine.tick()
    assert len(fleet.installs()) == 10
    fleet.now += 1
    engine.tick()
    assert len(fleet.installs()) == 20
    # A new engine (a restart) counts the commands of the last minute from the store.
    fleet.now += 30
    fleet.engine().tick()
    assert len(fleet.installs()) == 20
    fleet.now += 30
    fleet.engine().tick()
    assert len(fleet.installs()) == 25


def test_install_timeout_fails_a_silent_device(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(1, waves="100%", install_timeout="5m", max_failure_rate="100%")
    fleet.event("d000", "install.started", bundle="credit", version=3)
    fleet.now += 299
    engine.tick()
    [row] = fleet.store.rollout_devices(rollout.id)
    assert (row.state, row.reason) == ("installing", "the device accepted the command")
    fleet.now += 1
    engine.tick()
    [row] = fleet.store.rollout_devices(rollout.id)
    assert (row.state, row.reason) == (
        "failed",
        "no install.done within 300s of the command (install timeout)",
    )
    assert fleet.rollout(rollout.id).state == "completed"  # 100% allowed to fail


def test_success_needs_both_the_event_and_the_reported_state(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(1, waves="100%", install_timeout="5m")
    fleet.event("d000", "install.done", bundle="credit", version=3, slot="b")
    engine.tick()
    [row] = fleet.store.rollout_devices(rollout.id)
    assert (row.state, row.reason) == (
        "installing",
        "install done; waiting for the device's state to show credit-3",
    )
    fleet.store.upsert_device("d000", bundle=NEW)
    engine.tick()
    assert fleet.states(rollout.id) == {"d000": "succeeded"}


def test_events_from_before_the_command_are_not_answers(fleet: Fleet) -> None:
    fleet.add(1)
    fleet.install_failed("d000")  # an old failure of the same bundle
    rollout = fleet.start(waves="100%")
    engine = fleet.engine()
    engine.tick()
    engine.tick()
    assert fleet.states(rollout.id) == {"d000": "sent"}


def test_offline_devices_wait_and_their_timeout_starts_when_sent(fleet: Fleet) -> None:
    fleet.add(2, online=False)
    rollout = fleet.start(waves="100%", install_timeout="5m")
    engine = fleet.engine()
    engine.tick()
    assert fleet.installs() == []
    assert {r.reason for r in fleet.store.rollout_devices(rollout.id)} == {
        "offline; sent when back"
    }
    fleet.now += 3600
    engine.tick()
    assert set(fleet.states(rollout.id).values()) == {"pending"}
    fleet.store.upsert_device("d001", online=True)
    engine.tick()
    assert fleet.installs() == ["d001"]
    fleet.now += 60
    engine.tick()
    assert fleet.states(rollout.id) == {"d000": "pending", "d001": "sent"}


def test_devices_that_appear_mid_rollout_are_included(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="10%,100%")
    [canary] = fleet.installs()
    fleet.add(1, prefix="late", site="berlin")  # late000 joins the canary wave
    fleet.add(1, prefix="other", site="paris")
    engine.tick()
    assert fleet.installs() == [canary, "late000"]
    assert fleet.wave_of(rollout.id)["late000"] == 0
    fleet.installed(canary)
    fleet.installed("late000")
    engine.tick()
    engine.tick()
    assert len(fleet.installs()) == 11
    # In the last wave a newcomer is sent the bundle at once.
    fleet.add(1, prefix="later", site="berlin")
    engine.tick()
    assert fleet.installs()[-1] == "later000"
    assert "other000" not in fleet.installs()


def test_a_device_already_running_the_bundle_is_skipped(fleet: Fleet) -> None:
    fleet.add(2)
    fleet.add(1, prefix="new", bundle=NEW)
    rollout = fleet.start(waves="100%")
    engine = fleet.engine()
    engine.tick()
    assert sorted(fleet.installs()) == ["d000", "d001"]
    [row] = [r for r in fleet.store.rollout_devices(rollout.id) if r.device_id == "new000"]
    assert (row.state, row.reason) == ("skipped", "already runs credit-3")


def test_a_local_rollback_after_success_is_reported(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="10%,100%", max_failure_rate="5%")
    for device_id in fleet.installs():
        fleet.installed(device_id)
    engine.tick()
    engine.tick()
    second = fleet.installs()[1]
    fleet.installed(second)
    engine.tick()
    fleet.store.upsert_device(second, bundle=OLD)  # the agent went back by itself
    engine.tick()
    [row] = [r for r in fleet.store.rollout_devices(rollout.id) if r.device_id == second]
    assert (row.state, row.reason) == (
        "failed",
        "the device reports credit-2 after it ran credit-3 (rolled back locally)",
    )
    assert fleet.rollout(rollout.id).state == "halted"  # 1 of 10 is above 5%


def test_pause_resume_and_abort(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="10%,100%")
    [canary] = fleet.installs()
    pause_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
    fleet.installed(canary)
    engine.tick()
    engine.tick()
    assert fleet.states(rollout.id)[canary] == "succeeded"  # in flight, followed to its end
    assert fleet.installs() == [canary]  # nothing new while paused
    assert fleet.rollout(rollout.id).wave == 0
    with pytest.raises(RolloutError, match="rollout 1 is paused; this needs it running"):
        pause_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
    resume_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
    engine.tick()
    engine.tick()
    assert len(fleet.installs()) == 10
    installed = fleet.installs()[1:4]
    for device_id in installed:
        fleet.installed(device_id)
    engine.tick()
    aborted = abort_rollout(
        fleet.store, rollout.id, rollback=True, actor="bob", signature=None, now=fleet.now
    )
    assert (aborted.state, aborted.reason) == ("aborted", "aborted by bob")
    engine.tick()
    assert sorted(fleet.rollbacks()) == sorted([canary, *installed])
    assert len(fleet.installs()) == 10
    with pytest.raises(RolloutError, match="is aborted"):
        resume_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
    assert [entry.action for entry in AuditLog(fleet.store).entries()] == [
        "rollout.start",
        "rollout.pause",
        "rollout.resume",
        "rollout.abort",
    ]


def test_a_new_engine_continues_without_resending(fleet: Fleet) -> None:
    fleet.add(10)
    rollout = fleet.start(waves="10%,100%")
    fleet.engine().tick()
    [canary] = fleet.installs()
    restarted = fleet.engine()
    restarted.tick()
    restarted.tick()
    assert fleet.installs() == [canary]
    fleet.installed(canary)
    fleet.engine().tick()
    fleet.engine().tick()
    assert len(fleet.installs()) == 10 and len(set(fleet.installs())) == 10
    assert fleet.rollout(rollout.id).wave == 1


def test_a_failed_send_is_retried(fleet: Fleet) -> None:
    fleet.add(1)
    rollout = fleet.start(waves="100%")
    attempts = []

    def flaky(command: object) -> None:
        attempts.append(command)
        if len(attempts) == 1:
            raise OSError("broker connection lost")

    engine = fleet.engine()
    engine.send = flaky
    engine.tick()
    [row] = fleet.store.rollout_devices(rollout.id)
    assert (row.state, row.reason) == (
        "pending",
        "sending the command failed (broker connection lost); retrying",
    )
    engine.tick()
    assert len(attempts) == 2 and fleet.states(rollout.id) == {"d000": "sent"}


def test_a_bundle_withdrawn_from_the_repository_halts(fleet: Fleet) -> None:
    fleet.add(3)
    rollout = fleet.start(waves="100%")
    fleet.known = False
    fleet.engine().tick()
    halted = fleet.rollout(rollout.id)
    assert (halted.state, halted.reason) == (
        "halted",
        "credit-3 is no longer a target of the repository",
    )
    assert fleet.installs() == []


def test_a_selector_matching_nothing_is_refused(fleet: Fleet) -> None:
    fleet.add(2)
    with pytest.raises(RolloutError, match="selector 'site=rome' matches no device"):
        fleet.start("site=rome")


def test_a_pause_stored_during_a_tick_stops_its_commands(fleet: Fleet) -> None:
    fleet.add(10)
    rollout = fleet.start(waves="100%")
    engine = fleet.engine()

    def paused_meanwhile(name: str, version: int) -> bool:
        # The operator's pause lands after the tick read the rollout as running.
        pause_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
        return True

    engine.known_bundle = paused_meanwhile
    engine.tick()
    assert fleet.installs() == []
    assert set(fleet.states(rollout.id).values()) == {"pending"}


def test_offline_devices_do_not_stall_a_wave_past_the_install_timeout(fleet: Fleet) -> None:
    fleet.add(10)
    rollout = fleet.start(waves="20%,100%", install_timeout="5m")
    here, away = sorted(d for d, wave in fleet.wave_of(rollout.id).items() if wave == 0)
    fleet.store.upsert_device(away, online=False)
    engine = fleet.engine()
    engine.tick()
    assert fleet.installs() == [here]
    fleet.installed(here)
    fleet.now += 299
    engine.tick()
    assert fleet.waves(rollout.id)[0] == ("running", "1 of 2 devices decided; 1 offline")
    fleet.now += 1
    engine.tick()  # the wave ran for the install timeout: the offline canary is deferred
    assert fleet.rollout(rollout.id).wave == 1
    engine.tick()
    assert len(fleet.installs()) == 9
    fleet.store.upsert_device(away, online=True)
    engine.tick()
    assert fleet.installs()[-1] == away  # back: it gets its command


def test_a_wave_with_no_device_online_waits(fleet: Fleet) -> None:
    fleet.add(10, online=False)
    rollout, engine = fleet.begin(0, waves="20%,100%", install_timeout="5m")
    fleet.now += 3600
    engine.tick()
    assert fleet.rollout(rollout.id).wave == 0
    assert fleet.waves(rollout.id)[0] == ("running", "no device runs the bundle yet; 2 offline")
    assert fleet.installs() == []


def test_a_failed_rollback_send_is_retried(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(4, waves="50%,100%", auto_rollback=True)
    good, bad = fleet.installs()
    fleet.installed(good)
    fleet.install_failed(bad)

    def broker_down(command: object) -> None:
        raise OSError("broker connection lost")

    engine.send = broker_down
    engine.tick()
    [row] = [r for r in fleet.store.rollout_devices(rollout.id) if r.device_id == good]
    assert (row.state, row.reason) == (
        "succeeded",
        "sending the command failed (broker connection lost); retrying",
    )
    assert row.sent_at is not None and row.rollback_sent_at is None
    engine.send = fleet.sent.append
    engine.tick()
    assert fleet.rollbacks() == [good]
    assert fleet.states(rollout.id)[good] == "rolling_back"


def test_a_paused_rollout_does_not_advance_but_its_gates_still_halt_it(fleet: Fleet) -> None:
    rollout, engine = fleet.begin(10, waves="20%,100%", drift_gates=["psi<0.2"])
    for device_id in fleet.installs():
        fleet.installed(device_id)
    pause_rollout(fleet.store, rollout.id, actor="bob", signature=None, now=fleet.now)
    fleet.drift_values = {"psi": 0.1}
    engine.tick()
    assert fleet.rollout(rollout.id).wave == 0
    assert fleet.waves(rollout.id)[0] == ("running", "settled; the rollout is paused")
    fleet.drift_values = {"psi": 0.4}
    fleet.now += 10
    engine.tick()
    halted = fleet.rollout(rollout.id)
    assert halted.state == "halted" and halted.reason is not None
    assert halted.reason.startswith("drift gate psi<0.2 tripped: psi 0.4")
    assert len(fleet.installs()) == 2
