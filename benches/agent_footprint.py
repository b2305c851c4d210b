"""Idle footprint of `edgewise agent run` with a loaded model: resident memory and CPU share.

The issue's targets: at most 60 MB RSS and under 1% of one core (the Java Greengrass nucleus
asks for at least 96 MB for itself). The run compiles the credit pipeline, signs it into a TUF
repository, installs it into an agent state directory (slot a, health-checked), starts a
throwaway Mosquitto on a loopback port, then runs the agent exactly as a device would (default
60 s telemetry window and heartbeat, local endpoint on) and measures it from outside through
/proc while it idles, after one prediction so the inference path is loaded too.

    python benches/agent_footprint.py [--model logistic] [--duration 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from report import emit, environment, log, markdown_table

from edgewise.agent import DEVICE_ENVIRONMENT
from edgewise.agent.health import HealthPolicy
from edgewise.agent.install import Installer
from edgewise.agent.slots import SlotStore
from edgewise.compile import compile_pipeline
from edgewise.datasets import FEATURES, TARGET, credit_frame, credit_pipeline
from edgewise.transport import BundleRef
from edgewise.trust import DirectoryRepository, KeyRing, TrustClient, init_keys

START_TIMEOUT = 60.0
EDGEWISE = str(Path(sys.executable).parent / "edgewise")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed_bundle(work: Path, pipeline: Any) -> tuple[Path, Path]:
    """Fit `pipeline` on credit data, compile it as credit version 1 and sign it into a new
    TUF repository at work/repo (keys in work/keys); the bundle file and the pinned root."""
    train = credit_frame(3000, seed=0)
    pipeline.fit(train[FEATURES], train[TARGET])
    bundle = compile_pipeline(pipeline, train, name="credit", version=1, target=TARGET).bundle
    path = bundle.write(work / "credit-1.ewb")
    public = init_keys(work / "keys")
    repository = DirectoryRepository(work / "repo", KeyRing([work / "keys"]))
    repository.init(operator_keys=[public["operator"]])
    repository.add_bundle(path)
    root = Path(shutil.copy(work / "repo" / "metadata" / "1.root.json", work / "root.json"))
    return path, root


def signed_install(work: Path, model: str) -> tuple[Path, Path]:
    """Compile, sign and install a bundle; the pinned root and the agent's state directory."""
    path, root = signed_bundle(work, credit_pipeline(model))
    client = TrustClient.for_directory(work / "repo", root, work / "trust-state")
    info, _ = client.lookup("credit", 1)
    ref = BundleRef("credit", 1, info.hashes["sha256"], info.length)
    state = work / "state"
    installer = Installer(
        SlotStore(state), lambda p: client.verify_file(p, record=False), HealthPolicy()
    )
    installer.install(Path(shutil.copy(path, work / "download.ewb")), ref)
    return root, state


def start_broker(work: Path, port: int) -> subprocess.Popen[bytes]:
    config = work / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.5).close())
    return broker


def wait_until(attempt: Any) -> Any:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return attempt()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # polling a process that is still starting, bounded by the deadline


def predict_once(state: Path) -> None:
    row = credit_frame(1, seed=5)[FEATURES].iloc[0].to_dict()
    body = json.dumps({"rows": [{k: (None if v != v else v) for k, v in row.items()}]}).encode()

    def attempt() -> None:
        port = int((state / "http-port").read_text())
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/predict", data=body)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    wait_until(attempt)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def memory(pid: int) -> dict[str, float]:
    """RSS, and the part of it that is the process's own (USS: private pages), in MB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rollup = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )
    private = sum(int(rollup[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))
    return {"rss_mb": int(status["VmRSS"].split()[0]) / 1024, "uss_mb": private / 1024}


#: The environments measured: nothing set (the agent sets `DEVICE_ENVIRONMENT` itself), and the
#: libraries' own defaults, which a variable already in the environment keeps.
ENVIRONMENTS = {
    "agent's defaults": {},
    "library defaults": {
        "MIMALLOC_ARENA_EAGER_COMMIT": "2",
        "OPENBLAS_NUM_THREADS": str(os.cpu_count()),
    },
}


def measure(
    args: argparse.Namespace, work: Path, root: Path, state: Path, environment_name: str
) -> dict[str, Any]:
    """One idle run of the agent in one of `ENVIRONMENTS`."""
    port = free_port()
    broker = start_broker(work, port)
    config = work / "agent.toml"
    config.write_text(
        "\n".join(
            [
                'device_id = "bench-1"',
                f'state_dir = "{state}"',
                f'trust_root = "{root}"',
                "[broker]",
                f'url = "mqtt://127.0.0.1:{port}"',
                "[server]",
                "port = 0",
                "",
            ]
        )
    )
    log_file = (work / "agent.log").open("wb")
    env = {k: v for k, v in os.environ.items() if k not in DEVICE_ENVIRONMENT}
    agent = subprocess.Popen(
        [EDGEWISE, "agent", "run", "--config", str(config)],
        stdout=log_file,
        stderr=log_file,
        env={**env, **ENVIRONMENTS[environment_name]},
    )
    try:
        predict_once(state)
        log(f"agent serving; settling {args.settle}s, then measuring {args.duration}s idle")
        time.sleep(args.settle)
        samples = []
        cpu_start, started = cpu_seconds(agent.pid), time.monotonic()
        while time.monotonic() - started < args.duration:
            samples.append(memory(agent.pid))
            time.sleep(1.0)
        cpu = cpu_seconds(agent.pid) - cpu_start
        elapsed = time.monotonic() - started
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(START_TIMEOUT)
        broker.terminate()
        broker.wait(START_TIMEOUT)
    return {
        "model": args.model,
        "environment": environment_name,
        "duration_s": round(elapsed, 1),
        "rss_mb_max": round(max(s["rss_mb"] for s in samples), 1),
        "rss_mb_mean": round(sum(s["rss_mb"] for s in samples) / len(samples), 1),
        "uss_mb_max": round(max(s["uss_mb"] for s in samples), 1),
        "cpu_percent_of_one_core": round(100 * cpu / elapsed, 3),
        "exit_code_on_sigterm": agent.returncode,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default="logistic",
        choices=["logistic", "hist_gradient_boosting", "random_forest"],
    )
    parser.add_argument("--duration", type=float, default=60.0, help="idle seconds measured")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgewise-agent-bench-") as directory:
        work = Path(directory)
        log(f"compiling, signing and installing the {args.model} credit model")
        root, state = signed_install(work, args.model)
        results = [measure(args, work, root, state, name) for name in ENVIRONMENTS]
    report = {"environment": environment(["numpy", "paho-mqtt"]), "results": results}
    table = markdown_table(
        ["model", "environment", "idle s", "RSS max MB", "RSS mean MB", "USS max MB", "CPU %"],
        [
            [
                result["model"],
                result["environment"],
                f"{result['duration_s']:.0f}",
                f"{result['rss_mb_max']:.1f}",
                f"{result['rss_mb_mean']:.1f}",
                f"{result['uss_mb_max']:.1f}",
                f"{result['cpu_percent_of_one_core']:.2f}",
            ]
            for result in results
        ],
        right={2, 3, 4, 5, 6},
    )
    emit(report, "\n".join(table), args.json)


if __name__ == "__main__":
    main()
