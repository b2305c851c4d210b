"""The connection against a real Mosquitto: last will, reconnects, hostile payloads, backoff."""

from __future__ import annotations

import dataclasses
import random
import select
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Collector, Connect, make_certificates

from edgewise.transport import (
    Connection,
    Kind,
    State,
    Status,
    Telemetry,
    Tls,
    Will,
    device_topic,
    encode,
)
from edgewise.transport.backoff import Backoff
from edgewise.transport.topics import all_devices

STATE_A = device_topic("dev-a", Kind.STATE)
TELEMETRY_A = device_topic("dev-a", Kind.TELEMETRY)


def states(collector: Collector) -> list[Status]:
    return [m.body.status for m in collector.received if isinstance(m.body, State)]


def start_device_process(broker: Broker) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("transport_device.py")
    password = broker.credentials.passwords["dev-a"]
    process = subprocess.Popen(
        [sys.executable, str(script), str(broker.port), "dev-a", password],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 60)  # imports are slow when loaded
    assert ready and process.stdout.readline().strip() == "ready", "device process not ready"
    return process


def test_a_killed_device_is_marked_offline_by_its_last_will(
    broker: Broker, connect: Connect
) -> None:
    control = Collector()
    connect("control", {all_devices(Kind.STATE): control})
    device = start_device_process(broker)
    try:
        assert control.wait_for(lambda got: Status.ONLINE in states(control))
        device.kill()  # no DISCONNECT: the kernel just closes the socket
        device.wait(DELIVERY_TIMEOUT)
    finally:
        device.kill()
        device.communicate()
    assert control.wait_for(lambda got: states(control)[-1:] == [Status.OFFLINE])
    will = control.received[-1].body
    assert isinstance(will, State) and will.reason == "connection lost"
    # Retained: whoever subscribes later learns the device is offline.
    late = Collector()
    connect("control", {all_devices(Kind.STATE): late}, client_id="control-late")
    assert late.wait_for(lambda got: len(got) == 1)
    assert states(late) == [Status.OFFLINE]


def test_a_clean_stop_marks_the_device_offline_too(connect: Connect) -> None:
    control = Collector()
    connect("control", {all_devices(Kind.STATE): control})
    offline = encode(State(status=Status.OFFLINE, reason="stopped"))
    device = connect("dev-a", will=Will(STATE_A, offline))
    device.stop()
    assert control.wait_for(lambda got: states(control) == [Status.OFFLINE])


def test_reconnects_after_a_broker_restart_and_keeps_subscriptions(
    broker: Broker, connect: Connect
) -> None:
    control = Collector()
    control_connection = connect("control", {all_devices(Kind.TELEMETRY): control})
    device = connect("dev-a")
    broker.stop()
    broker.start()
    assert control_connection.wait_connected(DELIVERY_TIMEOUT)
    assert device.wait_connected(DELIVERY_TIMEOUT)
    device.publish(TELEMETRY_A, encode(Telemetry(window_start=0.0, window_end=1.0)))
    assert control.wait_for(lambda got: len(got) == 1)


def test_invalid_payloads_and_failing_handlers_do_not_stop_the_connection(
    connect: Connect,
) -> None:
    received = Collector()
    calls = []

    def failing_handler(inbound: object) -> None:
        calls.append(inbound)
        if len(calls) == 1:
            raise RuntimeError("a bug in a handler")

    control = connect("control", {all_devices(Kind.TELEMETRY): failing_handler})
    control.subscribe(all_devices(Kind.TELEMETRY), received)  # a second handler, same filter
    device = connect("dev-a")
    for payload in (b"\xff not json", b'{"v": 99}', b"[" * 200_000):
        device.publish(TELEMETRY_A, payload)
    good = Telemetry(window_start=0.0, window_end=1.0)
    for _ in range(2):
        device.publish(TELEMETRY_A, encode(good))
    assert received.wait_for(lambda got: len(got) == 2)
    assert control.dropped == 3
    assert len(calls) == 2  # the handler that raised was still called for the next message
    control.remove_handler(all_devices(Kind.TELEMETRY), failing_handler)
    device.publish(TELEMETRY_A, encode(good))
    assert received.wait_for(lambda got: len(got) == 3)
    assert len(calls) == 2


def test_backoff_grows_to_its_cap_with_full_jitter_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, rng=random.Random(1))
    caps = [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    delays = [backoff.next_delay() for _ in caps]
    assert all(0.0 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule
    backoff.reset()
    assert backoff.next_delay() <= 1.0
    # Over many draws the spread covers the whole window, not just its upper end.
    many = [Backoff(1.0, 8.0, random.Random(seed)).next_delay() for seed in range(200)]
    assert min(many) < 0.1 and max(many) > 0.9


def test_stop_returns_promptly_while_the_broker_is_down(broker: Broker, connect: Connect) -> None:
    device = connect("dev-a")
    broker.stop()
    stopper = threading.Thread(target=device.stop, daemon=True)
    stopper.start()
    stopper.join(10.0)
    assert not stopper.is_alive()


def test_a_device_started_while_the_broker_is_down_connects_when_it_comes_back(
    broker: Broker,
) -> None:
    broker.stop()
    with Connection("dev-a", broker.settings("dev-a")) as device:
        assert not device.wait_connected(1.0)
        broker.start()
        assert device.wait_connected(DELIVERY_TIMEOUT)


def test_tls_with_the_right_ca_connects_and_carries_messages(tls_broker: Broker) -> None:
    received = Collector()
    with (
        Connection("control", tls_broker.settings("control")) as control,
        Connection("dev-a", tls_broker.settings("dev-a")) as device,
    ):
        control.subscribe(all_devices(Kind.TELEMETRY), received)
        assert control.wait_connected(DELIVERY_TIMEOUT)
        assert device.wait_connected(DELIVERY_TIMEOUT)
        device.publish(TELEMETRY_A, encode(Telemetry(window_start=0.0, window_end=1.0)))
        assert received.wait_for(lambda got: len(got) == 1)


# paho 2.2 leaves the socket of a failed TLS handshake to the garbage collector, which closes
# it at once (the agent's open file count stays flat) but warns: that warning is paho's.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <ssl\.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
def test_tls_refuses_a_broker_certificate_from_another_ca(
    tls_broker: Broker, tmp_path: Path
) -> None:
    other_ca = make_certificates(tmp_path / "other").ca
    settings = dataclasses.replace(tls_broker.settings("dev-a"), tls=Tls(ca_file=str(other_ca)))
    with Connection("dev-a", settings) as device:
        assert not device.wait_connected(2.0)
    plain = dataclasses.replace(tls_broker.settings("dev-a"), tls=None)
    with Connection("dev-a", plain) as device:
        assert not device.wait_connected(2.0)
