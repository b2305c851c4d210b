"""Telemetry collector throughput: messages/s stored end to end through Mosquitto at QoS 1,
with profile merging, and a check that none was lost.

The issue's target: at least 10,000 telemetry messages/s on this 2-core machine with Mosquitto,
none lost. A throwaway Mosquitto (the test suite's, with the deployment ACL) gets one MQTT user
per simulated device, since the ACL lets a device write only its own topics; a child process
connects them all and publishes M telemetry windows at QoS 1, each with realistic small
profiles (`--rows` rows of 8 columns in, 1 out). The control plane's `Ingest` + `Registry` +
`Collector` store them (SQLite by default, `--db postgresql://...`). Two modes:

- backlog (default): the control session exists but is away while the devices publish (the
  broker queues for it), then ingest starts; the figure is how fast it drains: what the
  collector sustains, without the publishers competing for the 2 cores.
- live: devices publish while ingest runs; the figure is end to end, publishers included.

Every message id is then looked up in the store. Mosquitto must not cap the control client's
queue (`max_queued_messages 0` here; its default of 1000 drops silently when the collector
falls behind). Telemetry comes through the Rust `TelemetrySubscriber` (`--client rust`, what the
service runs), which acknowledges a batch once stored: Mosquitto's default of 20 unacknowledged
messages in flight per client would then cap each batch at 20, so the broker here lets
`--inflight` (1000) through, as docs/operations.md tells deployments to. `--client paho` is the
previous path (paho reads telemetry, acknowledges on receipt) for comparison.

    python benches/fleet_collector.py [--devices 40] [--messages 20000] [--mode backlog|live]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from report import emit, environment, log, markdown_table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from mqtt_broker import Broker, make_credentials

from edgewise import Profile
from edgewise.agent.telemetry import PROFILE_K
from edgewise.fleet.collector import Collector
from edgewise.fleet.ingest import Ingest
from edgewise.fleet.references import ReferenceProfiles
from edgewise.fleet.registry import Registry
from edgewise.fleet.store import Store
from edgewise.transport import Connection
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.messages import BundleRef, Telemetry, encode
from edgewise.transport.telemetry_session import telemetry_subscriber
from edgewise.transport.topics import Kind, device_topic

BUNDLE = BundleRef("credit", 1, "0" * 64, 1)
CONTROL_CLIENT = "control-bench"
TIMEOUT = 900.0


def profiles(rows: int, variants: int = 16) -> list[dict[str, bytes]]:
    """Input and output profiles of `variants` windows of `rows` rows (6 numeric columns, 2
    categorical), as devices send them."""
    from edgewise._core import Batch

    out = []
    for seed in range(variants):
        rng = np.random.default_rng(seed)
        columns: dict[str, Any] = {f"x{i}": rng.normal(i, 1 + i, rows) for i in range(6)}
        columns["region"] = rng.choice(["north", "south", "east", "west"], rows)
        columns["channel"] = rng.choice(["web", "app", "branch"], rows)
        inputs = Batch.from_arrow(pa.table(columns).to_batches()[0])
        outputs = Batch.from_arrow(pa.table({"score": rng.random(rows)}).to_batches()[0])
        pair = {}
        for role, batch in (("inputs", inputs), ("outputs", outputs)):
            profile = Profile(batch, k=PROFILE_K, threads=1)
            profile.update(batch)
            pair[role] = profile.to_bytes()
        out.append(pair)
    return out


def message_id(index: int) -> str:
    return f"m{index:09d}"


def device_of(index: int, devices: Sequence[str]) -> str:
    return devices[index % len(devices)]


def window_of(index: int, rows: int, now: float, variant: dict[str, bytes]) -> Telemetry:
    start = now - 60 + (index % 60)
    return Telemetry(
        id=message_id(index),
        window_start=start,
        window_end=start + 60,
        bundle=BUNDLE,
        metrics={"requests": 10, "rows": rows, "errors": 0, "latency_le_1ms": 10},
        profiles=variant,
    )


def example_message(rows: int) -> Telemetry:
    return window_of(0, rows, time.time(), profiles(rows, variants=1)[0])


def publish(broker: Broker, devices: Sequence[str], messages: int, rows: int, go: Any) -> None:
    """The devices' side, in a child process: connect every device, publish at QoS 1, wait for
    every PUBACK."""
    variants = profiles(rows)
    now = time.time()
    payloads = [
        encode(window_of(index, rows, now, variants[index % len(variants)]))
        for index in range(messages)
    ]
    connections = {d: Connection(d, broker.settings(d)).start() for d in devices}
    for device, connection in connections.items():
        if not connection.wait_connected(60):
            raise SystemExit(f"device {device} did not connect")
    go.wait(TIMEOUT)
    started = time.monotonic()
    infos = []
    for index, payload in enumerate(payloads):
        device = device_of(index, devices)
        infos.append(connections[device].publish(device_topic(device, Kind.TELEMETRY), payload))
    for info in infos:
        info.wait_for_publish(TIMEOUT)
    elapsed = time.monotonic() - started
    log(f"published {messages} messages in {elapsed:.1f}s ({messages / elapsed:,.0f}/s)")
    for connection in connections.values():
        connection.stop()


def cpu_seconds_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    devices = [f"bench-{i:03d}" for i in range(args.devices)]
    log(f"making {len(devices)} device users ...")
    (work / "broker").mkdir(mode=0o700)
    broker = Broker(work / "broker", make_credentials(work, devices))
    with broker.config.open("a") as config:
        config.write(f"max_queued_messages 0\nmax_inflight_messages {args.inflight}\n")
    broker.start()
    store = Store.open(args.db or work / "control.db")
    collector = Collector(store, ReferenceProfiles(work / "repository"), window=60.0)

    def start_ingest() -> tuple[Connection, Ingest]:
        settings = broker.settings(CONTROL_USER)
        connection = Connection(CONTROL_CLIENT, settings)
        telemetry = None
        if args.client == "rust":
            telemetry = telemetry_subscriber(f"{CONTROL_CLIENT}-telemetry", settings)
        ingest = Ingest(connection, Registry(store), collector, telemetry=telemetry).start()
        connection.start()
        if not connection.wait_connected(60):
            raise SystemExit("the control client did not connect")
        deadline = time.monotonic() + 60
        while telemetry is not None and not telemetry.connected:
            if time.monotonic() > deadline:
                raise SystemExit(f"the telemetry session did not connect: {telemetry.last_error}")
            time.sleep(0.01)
        return connection, ingest

    try:
        if args.mode == "backlog":
            connection, ingest = start_ingest()  # the persistent session and its subscriptions
            connection.stop()
            ingest.stop()
        context = multiprocessing.get_context("fork")
        go = context.Event()
        publisher = context.Process(
            target=publish, args=(broker, devices, args.messages, args.rows, go)
        )
        publisher.start()
        if args.mode == "backlog":
            go.set()
            publisher.join(TIMEOUT)
            log("published; the collector starts ...")
        mosquitto_cpu = cpu_seconds_of(broker._process.pid)  # type: ignore[union-attr]
        own_cpu = resource.getrusage(resource.RUSAGE_SELF)
        load_before = os.getloadavg()
        started = time.monotonic()
        connection, ingest = start_ingest()
        go.set()
        deadline = started + TIMEOUT
        while ingest.counts().stored < args.messages and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        counts = ingest.counts()
        own_after = resource.getrusage(resource.RUSAGE_SELF)
        mosquitto_cpu = cpu_seconds_of(broker._process.pid) - mosquitto_cpu  # type: ignore[union-attr]
        load_after = os.getloadavg()
        connection.stop()
        ingest.stop()
        publisher.join(TIMEOUT)
        with store.transaction() as cursor:
            stored_ids = {
                row["message_id"]
                for row in cursor.execute("SELECT message_id FROM telemetry_windows").all()
            }
        expected = {f"{device_of(i, devices)}/{message_id(i)}" for i in range(args.messages)}
        missing = len(expected - stored_ids)
        aggregates = store.aggregates((BUNDLE.name, BUNDLE.version))
        collector_cpu = (own_after.ru_utime + own_after.ru_stime) - (
            own_cpu.ru_utime + own_cpu.ru_stime
        )
        return {
            "mode": args.mode,
            "client": args.client,
            "devices": args.devices,
            "messages": args.messages,
            "rows_per_window": args.rows,
            "store": store.backend,
            "seconds": round(elapsed, 2),
            "messages_per_second": round(counts.stored / elapsed),
            "stored": counts.stored,
            "missing": missing,
            "duplicates": counts.duplicates,
            "rejected": counts.rejected,
            "batches": counts.batches,
            "windows_merged": sum(a.windows for a in aggregates),
            "rows_merged": sum(a.rows for a in aggregates),
            "collector_cpu_seconds": round(collector_cpu, 1),
            "collector_cpu_us_per_message": round(collector_cpu / max(counts.stored, 1) * 1e6),
            "message_bytes": len(encode(example_message(args.rows))),
            "mosquitto_cpu_seconds": round(mosquitto_cpu, 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        }
    finally:
        broker.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=100, help="rows per window's profile")
    parser.add_argument("--mode", choices=["backlog", "live"], default="backlog")
    parser.add_argument("--client", choices=["rust", "paho"], default="rust")
    parser.add_argument(
        "--inflight", type=int, default=1000, help="Mosquitto's max_inflight_messages"
    )
    parser.add_argument("--db", help="store URL (default: an SQLite file in a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgewise-collector-bench-") as work:
        result = run(args, Path(work))
    report = {"environment": environment(["paho-mqtt", "psycopg"]), "result": result}
    header = [
        "mode",
        "client",
        "devices",
        "messages",
        "store",
        "msg/s",
        "missing",
        "collector CPU s",
        "CPU us/msg",
        "mosquitto CPU s",
        "load before",
        "load after",
    ]
    line = [
        result["mode"],
        result["client"],
        str(result["devices"]),
        str(result["messages"]),
        result["store"],
        f"{result['messages_per_second']:,}",
        str(result["missing"]),
        str(result["collector_cpu_seconds"]),
        str(result["collector_cpu_us_per_message"]),
        str(result["mosquitto_cpu_seconds"]),
        " ".join(map(str, result["load_average_before"])),
        " ".join(map(str, result["load_average_after"])),
    ]
    emit(report, "\n".join(markdown_table(header, [line], right={2, 3, 5, 6, 7, 8, 9})), args.json)
    return 1 if result["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
