"""The local HTTP endpoint of a real agent, and the telemetry windows it feeds, through a real
Mosquitto (including an outage: windows wait in the outbox and arrive without a gap)."""

from __future__ import annotations

import itertools
import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, cast

import paho.mqtt.client as paho
import pytest
from agent_fleet import AGENT_TIMEOUT, AgentProcess, Fleet, active_is, start_fleet
from agent_support import ref_of
from mqtt_broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from trust_world import World

from edgewise import Model, Profile
from edgewise.datasets import FEATURES, credit_frame
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.telemetry_frame import decode_telemetry


class RawMessages:
    """Payloads as they travel (the transport's decoder keeps only the fields it knows, and the
    profiles and labels are additions), from a plain paho subscriber."""

    def __init__(self, broker: Broker, topic_filter: str, client_id: str) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._condition = threading.Condition()
        # A persistent session, so the broker queues what arrives while this client reconnects.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False
        )
        self.client.username_pw_set(CONTROL_USER, broker.credentials.passwords[CONTROL_USER])
        self.client.on_connect = lambda c, *_: c.subscribe(topic_filter, 1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._condition:
            self.payloads.append(as_document(message.topic, message.payload))
            self._condition.notify_all()

    def wait_for(self, predicate, timeout: float = AGENT_TIMEOUT) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: predicate(self.payloads), timeout)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def fleet(world: World, broker) -> Iterator[Fleet]:
    fleet, connection = start_fleet(world, broker, [world.publish()])
    yield fleet
    connection.stop()


def as_document(topic: str, payload: bytes) -> dict[str, Any]:
    """A JSON message as sent; a telemetry frame as the fields it holds."""
    if not topic.endswith("/telemetry"):
        return cast(dict[str, Any], json.loads(payload))
    window = decode_telemetry(topic, payload)
    return {**asdict(window), "bundle": None if window.bundle is None else asdict(window.bundle)}


@pytest.fixture
def telemetry(broker) -> Iterator[RawMessages]:
    raw = RawMessages(broker, "edgewise/v1/devices/+/telemetry", "raw-telemetry")
    yield raw
    raw.stop()


def rows(count: int, seed: int = 1) -> list[dict[str, Any]]:
    frame = credit_frame(count, seed=seed)[FEATURES]
    records = frame.to_dict(orient="records")
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in records
    ]


def post(port: int, body: bytes, path: str = "/v1/predict") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def serving_port(fleet: Fleet, agent: AgentProcess) -> int:
    fleet.wait_state("dev-a", lambda s: s.status.value == "online")
    return int((agent.state_dir / "http-port").read_text())


def test_predictions_match_the_model_and_bad_requests_get_clear_4xx(
    fleet, agent, world, bundle_path
):
    agent.env["EDGEWISE_AGENT_SERVER_MAX_ROWS"] = "50"
    agent.start()
    port = serving_port(fleet, agent)
    assert get(port, "/v1/health") == (503, {"status": "no_model", "bundle": None})
    assert post(port, json.dumps({"rows": rows(2)}).encode())[0] == 503

    installed = ref_of(next((world.repo / "targets").glob("*.ewb")))
    fleet.send("dev-a", "install", installed)
    fleet.wait_state("dev-a", active_is(installed))
    assert get(port, "/v1/health")[1]["bundle"]["version"] == installed.version

    sample = rows(20)
    status, answer = post(port, json.dumps({"rows": sample}).encode())
    assert status == 200 and len(answer["predictions"]) == 20
    import pandas as pd

    expected = Model.load(bundle_path).predict(pd.DataFrame(sample))
    import pyarrow as pa

    expected_rows = pa.record_batch(expected).to_pylist()
    for got, want in zip(answer["predictions"], expected_rows, strict=True):
        assert got["label"] == want["label"]
        assert got["proba_1"] == pytest.approx(want["proba_1"], abs=1e-12)

    assert post(port, b"{not json")[0] == 400
    assert post(port, b'{"rows": 3}') == (400, {"error": 'expected {"rows": [{...}, ...]}'})
    wrong = [{**sample[0], "age": "forty"}]
    assert post(port, json.dumps({"rows": wrong}).encode()) == (
        400,
        {"error": "row 0: column 'age' must be float or null, not \"forty\""},
    )
    unscorable = [sample[0], {**sample[1], "region": None}]
    assert post(port, json.dumps({"rows": unscorable}).encode()) == (
        422,
        {"error": "row 1: column 'region' is null (1 rows cannot be scored)"},
    )
    status, answer = post(port, json.dumps({"rows": rows(51)}).encode())
    assert (status, answer["error"]) == (413, "51 rows, over the limit of 50 per request")
    assert post(port, b"{}", path="/v2/other")[0] == 404


def test_telemetry_windows_carry_profiles_and_survive_a_broker_outage(
    fleet, agent, world, broker, telemetry
):
    installed = ref_of(next((world.repo / "targets").glob("*.ewb")))
    agent.start()
    port = serving_port(fleet, agent)
    fleet.send("dev-a", "install", installed)
    fleet.wait_state("dev-a", active_is(installed))
    assert post(port, json.dumps({"rows": rows(30)}).encode())[0] == 200

    def served(payloads: list[dict[str, Any]]) -> bool:
        return any(p["metrics"]["rows"] >= 30 for p in payloads)

    assert telemetry.wait_for(served)
    window = next(p for p in telemetry.payloads if p["metrics"]["rows"] >= 30)
    assert window["bundle"]["version"] == installed.version
    assert window["metrics"]["requests"] == 1 and window["metrics"]["errors"] == 0
    assert window["metrics"]["rss_bytes"] > 0 and "cpu_percent" in window["metrics"]
    inputs = Profile.from_bytes(window["profiles"]["inputs"])
    outputs = Profile.from_bytes(window["profiles"]["outputs"])
    assert inputs.rows == 30 and set(FEATURES) <= set(inputs.column_names)
    assert outputs.rows == 30 and "proba_1" in outputs.column_names

    # An outage of a few windows: requests go on, windows wait on disk, then arrive, no gap.
    broker.stop()
    for seed in range(3):
        assert post(port, json.dumps({"rows": rows(10, seed)}).encode())[0] == 200
    before = len(telemetry.payloads)
    agent_windows = 3  # telemetry_window is 1 s in the test configuration
    threading.Event().wait(agent_windows + 0.5)  # let windows end while the broker is down
    broker.start()
    assert telemetry.wait_for(lambda p: sum(q["metrics"]["rows"] for q in p[before:]) >= 30)
    unique = {p["id"]: p for p in telemetry.payloads}.values()  # QoS 1 may deliver twice
    windows = sorted((p["window_start"], p["window_end"]) for p in unique)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start == pytest.approx(end, abs=1e-6)  # each window begins where one ended


def test_retained_state_carries_the_configured_labels(fleet, agent, broker):
    agent.start()
    fleet.wait_state("dev-a", lambda s: s.status.value == "online")
    states = RawMessages(broker, "edgewise/v1/devices/dev-a/state", "raw-state")
    try:
        assert states.wait_for(lambda p: any(m.get("labels") == {"site": "lab"} for m in p))
    finally:
        states.stop()
