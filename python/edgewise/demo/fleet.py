"""The fleet half of `edgewise demo`: an embedded broker, the control plane and simulated devices
on this machine; a staged rollout of v1, drift that raises an alert, and a bad v2 that fails its
health checks on the canaries so that its rollout halts by itself."""

from __future__ import annotations

import dataclasses
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..broker.passwords import set_password
from ..bundle import Bundle
from ..datasets import credit_frame
from ..exceptions import EdgewiseError
from ..fleet.alert_rules import AlertRules, DriftRule, FailedInstallsRule
from ..fleet.api_client import ApiClient
from ..fleet.auth import Role, create_token
from ..fleet.config import ControlConfig
from ..fleet.service import BackgroundService
from ..fleet.simulator import Drift, FleetConfig, Simulator
from ..fleet.store import Store
from ..transport.acl import CONTROL_USER
from ..transport.client import BrokerSettings
from ..trust import DirectoryRepository, KeyRing

Say = Callable[[str], None]

BROKER_START_TIMEOUT = 60.0
STEP_TIMEOUT = 90.0  # seconds for one step of the story (a rollout, an alert) to happen
#: The demo's clock runs fast: telemetry every 2 s, alerts and drift over the last 30 s.
TELEMETRY_EVERY = 2.0
DRIFT_WINDOW = 30.0


@dataclass(frozen=True)
class FleetStory:
    devices: int
    v1_rollout: dict[str, Any]
    drift_alert: dict[str, Any]
    v2_rollout: dict[str, Any]
    audit_entries: int
    seconds: float


def run_fleet_story(
    workdir: Path, v1: Path, bad_v2: Bundle, *, devices: int, say: Say
) -> FleetStory:
    """Roll v1 (already in the repository at workdir/repo) out to `devices` simulated devices,
    watch drift raise an alert, then roll out `bad_v2` and watch it halt."""
    started = time.monotonic()
    repository = DirectoryRepository(workdir / "repo", KeyRing([workdir / "keys"]))
    passwords: dict[str, str] = {}
    fleet_config = _fleet_config(workdir, passwords.__getitem__, devices)
    for user in [CONTROL_USER, *fleet_config.device_ids()]:
        passwords[user] = secrets.token_urlsafe(16)
    password_file = workdir / "broker-passwords"
    # What the devices' applicants look like: the training distribution, fresh draws.
    credit_frame(50_000, seed=11).to_parquet(fleet_config.inputs, index=False)
    for user, password in passwords.items():
        set_password(password_file, user, password)

    say(f"6. starting the fleet: an embedded MQTT broker, the control plane, {devices} devices")
    with _broker(password_file, workdir / "broker-retained.db") as port:
        say(f"   broker: mqtt://127.0.0.1:{port} (password file and the fleet's ACL)")
        config = _control_config(workdir, port, passwords[CONTROL_USER])
        with Store.open(config.store) as store:
            token = create_token(store, "demo-operator", Role.OPERATOR)
        with BackgroundService(config) as control:
            api = ApiClient(control.api_url, token)
            say(f"   control plane: {control.api_url} (store {config.store})")
            simulator = Simulator(dataclasses.replace(fleet_config, broker=_device_broker(port)))
            with simulator:
                if not simulator.wait_online(STEP_TIMEOUT):
                    raise EdgewiseError("the simulated devices did not all connect in time")
                _wait(
                    lambda: sum(d["online"] for d in api.call("GET", "/v1/devices")) >= devices,
                    "the devices to register",
                )
                sites = ", ".join(fleet_config.spread["site"])
                say(f"   {devices} devices online in {sites}; none runs a model yet")

                first = _rollout(
                    api,
                    say,
                    v1,
                    waves="10%,50%,100%",
                    dwell="2s",
                    number=7,
                    story="rolling out v1 in three waves (10%, 50%, 100%), 2 s dwell each",
                )
                drifted = len(simulator.drifted)
                say(
                    f"8. {drifted} of {devices} devices now see applicants with higher incomes "
                    "(drift injected into their inputs); waiting for the collector"
                )
                alert = _wait(lambda: _firing(api, "drift"), "a drift alert")
                say(f"   alert: {alert['rule']} on {alert['subject']}: {_describe(alert)}")

                name, version = bad_v2.name, bad_v2.version
                path = bad_v2.write(workdir / f"{name}-{version}.ewb")
                repository.add_bundle(path)
                say(
                    f"9. {name} v{version} was packed with the wrong model file: signed and "
                    "published, but its model no longer gives the scores its health sample "
                    "expects"
                )
                second = _rollout(
                    api,
                    say,
                    path,
                    waves="10%,100%",
                    dwell="2s",
                    number=None,
                    max_failure_rate="0%",
                    auto_rollback=True,
                    story="rolling it out with --max-failure-rate 0% --auto-rollback",
                )
                entries = api.call("GET", "/v1/audit")
    return FleetStory(
        devices=devices,
        v1_rollout=first,
        drift_alert=alert,
        v2_rollout=second,
        audit_entries=len(entries),
        seconds=time.monotonic() - started,
    )


def _rollout(
    api: ApiClient,
    say: Say,
    bundle: Path,
    *,
    waves: str,
    dwell: str,
    number: int | None,
    story: str,
    **policy: Any,
) -> dict[str, Any]:
    manifest = Bundle.read(bundle).manifest
    name, version = manifest["name"], manifest["version"]
    say(f"{'   ' if number is None else f'{number}. '}{story}")
    body = {"bundle_name": name, "bundle_version": version, "waves": waves, "dwell": dwell}
    started = time.monotonic()
    created = api.call("POST", "/v1/rollouts", {**body, **policy})
    done = _wait(
        lambda: (
            (status := api.call("GET", f"/v1/rollouts/{created['id']}"))["state"]
            not in ("running",)
            and status
        ),
        f"rollout {created['id']} to finish",
    )
    for wave in done["waves"]:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(wave["device_states"].items()))
        say(f"   wave {wave['wave']} ({wave['size']}): {wave['state']}: {counts}")
    took = time.monotonic() - started
    say(
        f"   rollout {done['id']} of {name} v{version}: {done['state']} in {took:.0f} s"
        + _reason(done)
    )
    return dict(done)


def _reason(rollout: dict[str, Any]) -> str:
    return f" ({rollout['reason']})" if rollout.get("reason") else ""


def _firing(api: ApiClient, rule: str) -> dict[str, Any] | None:
    alerts = api.call("GET", "/v1/alerts", state="firing")
    return next((a for a in alerts if a["rule"] == rule), None)


def _describe(alert: dict[str, Any]) -> str:
    detail = alert["detail"]
    columns = ", ".join(detail.get("drifted_columns", [])) or "none by its own verdict"
    return (
        f"drifted columns: {columns} (worst PSI {detail['psi']:.3f}; "
        f"{detail['rows']:,} rows over the last {detail['window_seconds']:.0f} s)"
    )


def _wait(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)  # polling the API, as an operator's script would
    raise EdgewiseError(f"demo: gave up waiting for {what} after {STEP_TIMEOUT:.0f} s")


@contextmanager
def _broker(password_file: Path, retained: Path) -> Iterator[int]:
    """`edgewise broker` as its own process (in this one it would compete with the devices for
    the interpreter), on a free port; yields the port."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgewise",
            "broker",
            "--port",
            "0",
            "--password-file",
            str(password_file),
            "--retained-file",
            str(retained),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the ready line, or EOF if it failed
        found = re.search(r"listening on mqtt://[\d.]+:(\d+)", line)
        if found is None:
            _, errors = process.communicate(timeout=BROKER_START_TIMEOUT)
            raise EdgewiseError(f"the embedded broker did not start: {errors.strip()}")
        yield int(found.group(1))
    finally:
        process.terminate()
        try:
            process.communicate(timeout=BROKER_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _control_config(workdir: Path, port: int, password: str) -> ControlConfig:
    return ControlConfig(
        store=str(workdir / "control.db"),
        repository=workdir / "repo",
        operator_keys=workdir / "keys",
        broker=BrokerSettings(
            "127.0.0.1", port, CONTROL_USER, password, backoff_initial=0.2, backoff_max=1.0
        ),
        api_port=0,
        collector_window=TELEMETRY_EVERY * 2,
        rollout_tick=0.5,
        metadata_poll=0.5,
        alert_rules=AlertRules(
            interval=1.0,
            drift=DriftRule(window=DRIFT_WINDOW),
            failed_installs=FailedInstallsRule(window=DRIFT_WINDOW, max_count=0),
        ),
    )


def _device_broker(port: int) -> BrokerSettings:
    return BrokerSettings("127.0.0.1", port, backoff_initial=0.2, backoff_max=1.0)


def _fleet_config(workdir: Path, password: Callable[[str], str], devices: int) -> FleetConfig:
    """The simulated devices: spread over three sites, a quarter of them seeing drifted
    incomes. The broker's port is filled in once it listens."""
    return FleetConfig(
        devices=devices,
        broker=_device_broker(0),
        password=password,
        trust_root=(workdir / "repo" / "metadata" / "1.root.json").read_bytes(),
        spread={"site": ["berlin", "paris", "lyon"]},
        telemetry_every=TELEMETRY_EVERY,
        rows_per_window=200,
        inputs=workdir / "device-inputs.parquet",
        drift=(Drift(0.25, "income", 40_000.0),),
        chunk_size=16 * 1024,
    )
