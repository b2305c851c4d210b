"""Fleet scale: N simulated devices connect, then a ~200 KB bundle goes to all of them in 4 waves.

The issue's target: on a 2-core machine with Mosquitto, 1,000 simulated devices complete a 4-wave
rollout of a 200 KB bundle in at most 60 s with zero dwell. The run compiles a random forest
credit pipeline (~200 KB bundle), signs it into a TUF repository, starts Mosquitto with a
password per device and the fleet ACL, runs `edgewise fleet simulate` as its own process, and
runs the control plane here: by default the real one (`edgewise control run` on a thread of
this process, SQLite store), which is asked over its HTTP API for a rollout in waves of 1%, 10%,
50% and 100% of the devices with zero dwell; with `--control direct`, a bare `ControlSide` sends
the same waves itself, each when every device of the previous one reported `install.done`.
Everything is measured from outside: the devices' retained states and events as an observer
connection sees them, the rollout's status over the API, /proc for CPU and memory.

    python benches/fleet_simulator.py [--devices 100,1000,5000] [--control engine|direct] [--json]
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from agent_footprint import cpu_seconds, free_port, memory, signed_bundle, wait_until
from report import emit, environment, log, markdown_table

from edgewise.agent.commands import new_command
from edgewise.datasets import credit_pipeline
from edgewise.fleet import ControlSide
from edgewise.fleet.api_client import ApiClient
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.config import ControlConfig
from edgewise.fleet.service import BackgroundService
from edgewise.fleet.simulator.credentials import (
    new_passwords,
    write_credentials,
    write_password_file,
)
from edgewise.fleet.simulator.fleet import raise_fd_limit
from edgewise.fleet.store import Store
from edgewise.transport import BrokerSettings, Connection, Event, Inbound, State, Status
from edgewise.transport.acl import CONTROL_USER, mosquitto_acl
from edgewise.transport.topics import Kind, all_devices
from edgewise.trust import TrustClient
from edgewise.trust.keys import PRIVATE_SUFFIX, load_signer, read_public_key

EDGEWISE = str(Path(sys.executable).parent / "edgewise")
WAVES = (0.01, 0.10, 0.50, 1.0)  # cumulative shares of the fleet
TREES = 17  # a random forest of this many trees, depth 8, makes a bundle of about 200 KB
PHASE_TIMEOUT = 180.0  # seconds for a wave; the simulator's downloads give up after 600 s
STOP_TIMEOUT = 120.0


class Reports:
    """What the control plane hears: each device's latest state and its install outcomes."""

    def __init__(self) -> None:
        self.online: set[str] = set()
        self.done: set[str] = set()
        self.failed: dict[str, str] = {}
        self.received = 0
        self._changed = threading.Condition()

    def __call__(self, inbound: Inbound) -> None:
        device, body = inbound.device, inbound.body
        with self._changed:
            self.received += 1
            if isinstance(body, State) and device is not None:
                (self.online.add if body.status is Status.ONLINE else self.online.discard)(device)
            elif isinstance(body, Event) and device is not None:
                if body.name == "install.done":
                    self.done.add(device)
                elif body.name == "install.failed":
                    self.failed[device] = str(body.detail.get("reason"))
            self._changed.notify_all()

    def outcomes(self) -> int:
        return len(self.done) + len(self.failed)

    def wait(self, check: Callable[[], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(check, timeout)


def make_bundle(work: Path) -> tuple[Path, Path, Any]:
    """A signed ~200 KB bundle: (repository, pinned root, operator key)."""
    pipeline = credit_pipeline("random_forest", n_estimators=TREES, max_depth=8, n_jobs=1)
    _, root = signed_bundle(work, pipeline)
    key = read_public_key(work / "keys" / "operator.pub")
    signer = load_signer(work / "keys" / f"operator{PRIVATE_SUFFIX}", key)
    return work / "repo", root, signer


def start_broker(
    work: Path, port: int, passwords: Path, max_queued: int
) -> subprocess.Popen[bytes]:
    (work / "acl").write_text(mosquitto_acl())
    config = work / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        f"acl_file {work / 'acl'}\nlog_dest file {work / 'mosquitto.log'}\n"
        f"max_queued_messages {max_queued}\n"
        # As root, Mosquitto would switch to the `mosquitto` user, who cannot read `work`.
        f"user {getpass.getuser()}\n"
    )
    broker = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import socket

    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close())
    return broker


class Peak:
    """The simulator's peak RSS, sampled from /proc while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.rss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.rss_mb = max(self.rss_mb, memory(self.pid)["rss_mb"])
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run(devices: int, work: Path, repo: Path, root: Path, signer: Any, args: Any) -> dict[str, Any]:
    work.mkdir(parents=True)
    ids = [f"sim-{i:0{max(4, len(str(devices - 1)))}d}" for i in range(devices)]
    passwords = new_passwords([CONTROL_USER, *ids])
    credentials = write_credentials({d: passwords[d] for d in ids}, work / "sim.passwords")
    hashed = write_password_file(passwords, work / "mosquitto.passwords")
    port = free_port()
    broker = start_broker(work, port, hashed, args.max_queued)
    reports = Reports()
    settings = BrokerSettings("127.0.0.1", port, CONTROL_USER, passwords[CONTROL_USER])
    control = Connection(CONTROL_USER, settings)
    for kind in (Kind.STATE, Kind.EVENTS):
        control.subscribe(all_devices(kind), reports)
    plane = ControlPlane(work, repo, settings) if args.control == "engine" else None
    side = None if plane is not None else ControlSide(control, repo, signer).start()
    control.start()
    assert control.wait_connected(30), "control side did not connect"
    if side is not None:
        side.publish_metadata()
    client = TrustClient.for_directory(repo, root, work / "trust")
    info, _ = client.lookup("credit", 1)
    load_before = os.getloadavg()
    control_cpu = time.process_time()
    broker_cpu = cpu_seconds(broker.pid)
    started = time.monotonic()
    simulator = subprocess.Popen(
        [
            EDGEWISE, "fleet", "simulate", "--devices", str(devices),
            "--broker", f"mqtt://127.0.0.1:{port}", "--credentials", str(credentials),
            "--trust-root", str(root), "--label-spread", "site=berlin,paris,tokyo",
            "--telemetry-every", args.telemetry_every, "--workers", str(args.workers), "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=open(work / "simulator.log", "wb"),  # noqa: SIM115 - closed with the process
    )  # fmt: skip
    peak = Peak(simulator.pid)
    try:
        online = reports.wait(lambda: len(reports.online) >= devices, PHASE_TIMEOUT)
        connected = time.monotonic() - started
        assert online, f"only {len(reports.online)} of {devices} devices came online"
        sim_cpu_connected = cpu_seconds(simulator.pid)
        log(f"{devices} devices online in {connected:.1f}s")
        rollout_started = time.monotonic()
        if plane is not None:
            waves = plane.rollout(devices)
        else:
            assert side is not None
            waves = direct_waves(side, reports, ids)
        rollout = time.monotonic() - rollout_started
        sim_cpu = cpu_seconds(simulator.pid)
        sim_memory = memory(simulator.pid)
    finally:
        simulator.send_signal(signal.SIGTERM)
        try:
            output, _ = simulator.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            simulator.kill()
            output = b"(killed: did not stop in time)"
        peak.stop()
        control.stop()
        if plane is not None:
            plane.stop()
        broker_cpu = cpu_seconds(broker.pid) - broker_cpu
        broker.terminate()
        broker.wait(30)
    return {
        "devices": devices,
        "control": args.control,
        "bundle_bytes": info.length,
        "connect_seconds": round(connected, 2),
        "rollout_seconds": round(rollout, 2),
        "wave_seconds": waves,
        "installs_done": len(reports.done),
        "installs_failed": len(reports.failed),
        "simulator_cpu_seconds_connect": round(sim_cpu_connected, 2),
        "simulator_cpu_seconds_rollout": round(sim_cpu - sim_cpu_connected, 2),
        "simulator_rss_mb": round(sim_memory["rss_mb"], 1),
        "simulator_peak_rss_mb": round(max(peak.rss_mb, sim_memory["rss_mb"]), 1),
        "control_cpu_seconds": round(time.process_time() - control_cpu, 2),
        "mosquitto_cpu_seconds": round(broker_cpu, 2),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "complete": reports.outcomes() == devices,
        "max_queued_messages": args.max_queued,
        "simulator_summary": _summary(output),
    }


class ControlPlane:
    """`edgewise control run` on a thread of this process, and an operator token for its API."""

    def __init__(self, work: Path, repo: Path, broker: BrokerSettings) -> None:
        config = ControlConfig(
            store=str(work / "control.db"),
            repository=repo,
            operator_keys=repo.parent / "keys",
            broker=broker,
            api_port=0,
            rollout_tick=0.2,
            metadata_poll=1.0,
        )
        with Store.open(config.store) as store:
            token = create_token(store, "bench", Role.OPERATOR)
        self.service = BackgroundService(config).__enter__()
        self.api = ApiClient(self.service.api_url, token)

    def rollout(self, devices: int) -> list[float]:
        """Roll credit v1 out in the benchmark's waves with zero dwell; each wave's seconds."""
        waves = ",".join(f"{share:.0%}" for share in WAVES)
        body = {"bundle_name": "credit", "bundle_version": 1, "waves": waves, "dwell": "0s"}
        rollout = self.api.call("POST", "/v1/rollouts", body)
        path = f"/v1/rollouts/{rollout['id']}"
        deadline = time.monotonic() + PHASE_TIMEOUT * len(WAVES)
        status = self.api.call("GET", path)
        while status["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)  # polling the API, as an operator's script would
            status = self.api.call("GET", path)
        log(f"rollout {status['state']}: {status['device_states']} {status['reason'] or ''}")
        assert status["state"] == "completed", status
        return [_seconds(wave) for wave in status["waves"]]

    def stop(self) -> None:
        self.service.__exit__(None, None, None)


def _seconds(wave: dict[str, Any]) -> float:
    started, finished = wave["started_at"], wave["finished_at"]
    if not started or not finished:
        return float("nan")
    delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return round(delta.total_seconds(), 2)


def direct_waves(side: ControlSide, reports: Reports, ids: list[str]) -> list[float]:
    """The waves sent by hand, each when the previous one's devices all reported."""
    waves = []
    sent = 0
    for share in WAVES:
        wave_started = time.monotonic()
        upto = max(1, round(share * len(ids)))
        for device in ids[sent:upto]:
            side.send(new_command(device, "install", bundle=("credit", 1)))
        sent = upto
        finished = reports.wait(lambda n=sent: reports.outcomes() >= n, PHASE_TIMEOUT)
        waves.append(round(time.monotonic() - wave_started, 2))
        if not finished:
            log(f"wave to {sent}: only {reports.outcomes()} outcomes heard; giving up")
            break
        log(f"wave to {sent} devices done in {waves[-1]}s")
    return waves


def _device_done(result: dict[str, Any]) -> str:
    summary = result["simulator_summary"]
    return str(summary["installs_done"]) if isinstance(summary, dict) else "?"


def _summary(output: bytes) -> Any:
    """The simulator's own account (installs it did, whatever the control plane heard)."""
    try:
        return json.loads(output)
    except ValueError:
        return output.decode(errors="replace")[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="100,1000,5000", help="fleet sizes, comma-separated")
    parser.add_argument(
        "--control",
        choices=["engine", "direct"],
        default="engine",
        help="the real control plane's rollout engine, or waves sent by a bare ControlSide",
    )
    parser.add_argument("--telemetry-every", default="60s", help="the simulator's window")
    parser.add_argument("--workers", type=int, default=4, help="the simulator's install threads")
    parser.add_argument(
        "--max-queued",
        type=int,
        default=1000,
        help="Mosquitto's max_queued_messages per client (its default: 1000)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.devices.split(",")]
    raise_fd_limit(2 * max(sizes) + 1024)  # the broker (our child) holds a socket per device too
    work = Path(tempfile.mkdtemp(prefix="edgewise-fleet-bench-"))
    try:
        log("compiling and signing a ~200 KB bundle")
        repo, root, signer = make_bundle(work)
        results = [run(n, work / f"n{n}", repo, root, signer, args) for n in sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = [
        "devices", "connect s", "4-wave rollout s", "waves s", "done (device / heard) / failed",
        "sim CPU s (connect / rollout)", "sim peak RSS MB", "Mosquitto CPU s", "load before",
    ]  # fmt: skip
    lines = [
        [
            str(r["devices"]),
            f"{r['connect_seconds']:.1f}",
            f"{r['rollout_seconds']:.1f}",
            " / ".join(f"{w:.1f}" for w in r["wave_seconds"]),
            f"{_device_done(r)} / {r['installs_done']} / {r['installs_failed']}",
            f"{r['simulator_cpu_seconds_connect']:.1f} / {r['simulator_cpu_seconds_rollout']:.1f}",
            f"{r['simulator_peak_rss_mb']:.0f}",
            f"{r['mosquitto_cpu_seconds']:.1f}",
            " ".join(f"{x:.2f}" for x in r["load_average_before"]),
        ]
        for r in results
    ]
    table = "\n".join(markdown_table(header, lines, right={0, 1, 2, 4, 5, 6, 7}))
    emit({"environment": environment(["paho-mqtt"]), "results": results}, table, args.json)


if __name__ == "__main__":
    main()
