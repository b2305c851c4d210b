"""QoS 1 messages per second that a broker relays: the embedded broker next to Mosquitto.

One publisher and one subscriber (paho-mqtt, as the fleet's clients), 1 KB payloads at QoS 1
both ways, 20 messages in flight (paho's default), both brokers with the fleet's password file
and ACL. The clock runs from the first publish to the last delivery; every message must arrive.
A second run adds the subscriptions 1,000 devices would hold (two filters each, held by one
extra idle client): Mosquitto keeps subscriptions in a tree, amqtt matches every message
against every filter, so this is what tells whether a fleet of that size is realistic.

The clients are Python too, so Mosquitto's figure is partly the clients' ceiling: the ratio
understates how much faster Mosquitto is, never overstates it.

    python benches/broker_throughput.py [--messages 5000] [--devices 1000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from report import emit, environment, log, markdown_table

from edgewise.broker import set_password
from edgewise.transport.acl import CONTROL_USER, mosquitto_acl
from edgewise.transport.topics import ALERTS, DEVICES

PASSWORD = "bench"
TOPIC = f"{ALERTS}/bench"
TIMEOUT = 300.0  # seconds for one run, on a loaded machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(command: list[str], port: int) -> Iterator[None]:
    """A broker process, from when it accepts connections until it is stopped (SIGTERM)."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # imports are slow on a loaded machine
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)  # a process still starting; bounded by the deadline
        yield
    finally:
        process.terminate()
        process.wait(10)


def mosquitto(work: Path, port: int) -> contextlib.AbstractContextManager[None]:
    (work / "acl").write_text(mosquitto_acl())
    config = work / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {work / 'passwords'}\nacl_file {work / 'acl'}\n"
        # Unlimited queue: the default (1000) would drop messages when the reader lags.
        f"max_queued_messages 0\nuser {getpass.getuser()}\n"
    )
    return serving([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)], port)


def embedded(work: Path, port: int) -> contextlib.AbstractContextManager[None]:
    """`edgewise broker` as its own process, as it runs for real (in this process it would
    compete for the GIL with the benchmark's clients)."""
    edgewise = str(Path(sys.executable).parent / "edgewise")
    options = ["--port", str(port), "--password-file", str(work / "passwords")]
    return serving([edgewise, "broker", *options], port)


def client(port: int, client_id: str) -> paho.Client:
    made = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=True,
        protocol=paho.MQTTv311,
    )
    made.username_pw_set(CONTROL_USER, PASSWORD)
    made.max_inflight_messages_set(20)
    made.max_queued_messages_set(0)
    connected = threading.Event()
    made.on_connect = lambda *_: connected.set()
    made.connect("127.0.0.1", port, 60)
    made.loop_start()
    if not connected.wait(30):
        raise RuntimeError(f"{client_id}: no CONNACK")
    return made


def subscribe(made: paho.Client, filters: list[str]) -> None:
    done = threading.Event()
    made.on_subscribe = lambda *_: done.set()
    made.subscribe([(f, 1) for f in filters])
    if not done.wait(60):
        raise RuntimeError("no SUBACK")


def relay_rate(port: int, messages: int, devices: int) -> float:
    """Messages per second from the first publish to the last delivery."""
    idle = client(port, "bench-idle")
    if devices:  # the cmd and xfer filters of that many devices, as the fleet's agents hold
        subscribe(
            idle, [f"{DEVICES}/dev-{i}/{kind}" for i in range(devices) for kind in ("cmd", "xfer")]
        )
    reader, writer = client(port, "bench-reader"), client(port, "bench-writer")
    subscribe(reader, [TOPIC])
    arrived, all_arrived = [0], threading.Event()

    def on_message(*_: object) -> None:
        arrived[0] += 1
        if arrived[0] == messages:
            all_arrived.set()

    reader.on_message = on_message
    payload = bytes(1024)
    started = time.perf_counter()
    for _ in range(messages):
        writer.publish(TOPIC, payload, qos=1)
    if not all_arrived.wait(TIMEOUT):
        raise RuntimeError(f"only {arrived[0]} of {messages} messages arrived")
    elapsed = time.perf_counter() - started
    for made in (idle, reader, writer):
        made.disconnect()
        made.loop_stop()
    return messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    brokers = {"mosquitto": mosquitto, "embedded (amqtt)": embedded}
    rates: dict[str, dict[int, float]] = {name: {} for name in brokers}
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        set_password(work / "passwords", CONTROL_USER, PASSWORD)
        for devices in (0, args.devices):
            for name, start in brokers.items():
                best = 0.0
                for attempt in range(args.repeat):
                    port = free_port()
                    with start(work, port):
                        rate = relay_rate(port, args.messages, devices)
                    log(f"{name}, {devices} devices, run {attempt + 1}: {rate:,.0f}/s")
                    best = max(best, rate)
                rates[name][devices] = best
    lines = []
    for devices in (0, args.devices):
        mosq, ours = rates["mosquitto"][devices], rates["embedded (amqtt)"][devices]
        lines.append([f"{devices:,}", f"{mosq:,.0f}", f"{ours:,.0f}", f"{mosq / ours:.1f}x"])
    header = ["other devices' subscriptions", "Mosquitto msg/s", "embedded msg/s", "Mosquitto is"]
    table = "\n".join(markdown_table(header, lines, right={0, 1, 2, 3}))
    report = {
        "environment": environment(["amqtt", "paho-mqtt"]),
        "messages": args.messages,
        "payload_bytes": 1024,
        "best_of": args.repeat,
        "rates": {name: {str(k): v for k, v in by.items()} for name, by in rates.items()},
    }
    emit(report, table, args.json)


if __name__ == "__main__":
    main()
