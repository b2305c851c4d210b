"""Alert rules fire once per subject, resolve when their condition clears, and notify on both
(a real HTTP server on loopback for the webhook, a real Mosquitto for the MQTT topic)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fleet_telemetry import bundle_ref, input_profile, repository_with, window
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Credentials
from paho.mqtt import client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edgewise import Bundle
from edgewise.exceptions import ConfigError
from edgewise.fleet.alert_rules import RULES, AlertRules, WebhookSettings
from edgewise.fleet.alerts import AlertEvaluator
from edgewise.fleet.collector import Collector
from edgewise.fleet.notifiers import WebhookNotifier, notifiers_for
from edgewise.fleet.references import ReferenceProfiles
from edgewise.fleet.registry import Registry
from edgewise.fleet.store import Alert, Store
from edgewise.transport import Connection
from edgewise.transport.acl import CONTROL_USER
from edgewise.transport.messages import BundleRef, Event, State, Status
from edgewise.transport.topics import ALERTS

NOW = 100_000.0


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def notify(self, alert: Alert) -> None:
        self.seen.append((alert.state, alert.rule, alert.subject))


@pytest.fixture
def collector(store: Store, tmp_path: Path, bundle_path: Path) -> Collector:
    return Collector(store, ReferenceProfiles(repository_with(tmp_path / "repo", bundle_path)))


@pytest.fixture
def ref(bundle: Bundle) -> BundleRef:
    return bundle_ref(bundle)


def only(**enabled: dict[str, object]) -> AlertRules:
    """Rules with every rule off but those given (with their settings)."""
    off = {name: {"enabled": False} for name in RULES}
    return AlertRules.from_mapping(
        {**off, **{k: {"enabled": True, **v} for k, v in enabled.items()}}
    )


def test_error_rate_fires_once_resolves_and_notifies_on_both(
    store: Store, collector: Collector, ref: BundleRef
) -> None:
    recorder = Recorder()
    rules = only(error_rate={"max_percent": 5, "window": "10m", "min_requests": 50})
    evaluator = AlertEvaluator(store, rules, collector, [recorder])
    profile = input_profile(20, 1)
    collector.record(
        [
            (f"d{i}", window(ref, NOW - 300 + i, inputs=profile, requests=30, errors=3))
            for i in range(3)
        ]
    )
    [fired] = evaluator.evaluate(NOW)
    assert (fired.rule, fired.subject, fired.state) == ("error_rate", "credit:3", "firing")
    assert fired.detail["error_percent"] == 10.0
    assert evaluator.evaluate(NOW + 10) == []  # still firing: no new alert, no notification
    assert len(store.alerts("firing")) == 1
    [resolved] = evaluator.evaluate(NOW + 3600)  # the bad windows left the window
    assert resolved.state == "resolved" and resolved.id == fired.id
    assert recorder.seen == [
        ("firing", "error_rate", "credit:3"),
        ("resolved", "error_rate", "credit:3"),
    ]
    # Too few requests say nothing.
    collector.record([("d9", window(ref, NOW + 4000, inputs=profile, requests=10, errors=10))])
    assert evaluator.evaluate(NOW + 4100) == []


def test_latency_p99_fires_and_resolves(store: Store, collector: Collector, ref: BundleRef) -> None:
    evaluator = AlertEvaluator(
        store, only(latency_p99={"max_ms": 250, "min_requests": 10}), collector
    )
    collector.record([("d1", window(ref, NOW - 100, inputs=None, requests=100, slow=5))])
    [fired] = evaluator.evaluate(NOW)
    assert fired.detail["p99_ms"] == 1000.0
    collector.record([("d1", window(ref, NOW + 1000, inputs=None, requests=100, slow=0))])
    [resolved] = evaluator.evaluate(NOW + 1100)
    assert resolved.state == "resolved"


def test_devices_offline_fires_past_the_fraction_and_resolves_when_they_return(
    store: Store, collector: Collector
) -> None:
    registry = Registry(store)
    registry.record([(f"d{i}", State(ts=NOW - 1000, status=Status.ONLINE)) for i in range(10)])
    evaluator = AlertEvaluator(
        store, only(devices_offline={"max_fraction": 0.1, "after": "5m"}), collector
    )
    registry.record([(d, State(ts=NOW - 900, status=Status.OFFLINE)) for d in ("d1", "d2")])
    registry.record([("d3", State(ts=NOW - 10, status=Status.OFFLINE))])  # just now: not yet
    [fired] = evaluator.evaluate(NOW)
    assert fired.subject == "fleet"
    assert fired.detail["offline"] == 2 and fired.detail["examples"] == ["d1", "d2"]
    registry.record([(d, State(ts=NOW + 5, status=Status.ONLINE)) for d in ("d1", "d2", "d3")])
    [resolved] = evaluator.evaluate(NOW + 10)
    assert resolved.state == "resolved"
    by_count = AlertEvaluator(
        store, only(devices_offline={"max_count": 0, "max_fraction": None}), collector
    )
    registry.record([("d4", State(ts=NOW, status=Status.OFFLINE))])
    assert [a.detail["offline"] for a in by_count.evaluate(NOW + 600)] == [1]
    # Turning the rule off resolves its alert.
    [resolved] = AlertEvaluator(store, only(), collector).evaluate(NOW + 700)
    assert (resolved.rule, resolved.state) == ("devices_offline", "resolved")


def test_failed_installs_fire_per_bundle_version(store: Store, collector: Collector) -> None:
    registry = Registry(store)
    evaluator = AlertEvaluator(
        store, only(failed_installs={"max_count": 2, "window": "1h"}), collector
    )
    failed = {"bundle": "credit", "version": 4, "reason": "health check failed"}
    registry.record(
        [(f"d{i}", Event(ts=NOW - 60, name="install.failed", detail=failed)) for i in range(3)]
        + [("d9", Event(ts=NOW - 60, name="install.failed", detail={**failed, "version": 5}))]
    )
    [fired] = evaluator.evaluate(NOW)
    assert fired.subject == "credit:4" and fired.detail["devices"] == ["d0", "d1", "d2"]
    [resolved] = evaluator.evaluate(NOW + 3600)
    assert resolved.subject == "credit:4" and resolved.state == "resolved"


def test_drift_fires_on_shifted_inputs_only(
    store: Store, collector: Collector, ref: BundleRef
) -> None:
    evaluator = AlertEvaluator(store, only(drift={"window": "1h", "psi": 0.2}), collector)
    calm = [("d1", window(ref, NOW - 600 + i, inputs=input_profile(300, 10 + i))) for i in range(3)]
    collector.record(calm)
    assert evaluator.evaluate(NOW) == []
    later = NOW + 7200
    hot = [
        ("d2", window(ref, later - 600 + i, inputs=input_profile(300, 20 + i, shift=1.0)))
        for i in range(3)
    ]
    collector.record(hot)
    [fired] = evaluator.evaluate(later)
    assert fired.rule == "drift" and fired.detail["psi"] > 0.2
    assert "income" in fired.detail["drifted_columns"]
    [resolved] = evaluator.evaluate(later + 7200)
    assert resolved.state == "resolved"


def test_rules_are_read_from_the_alerts_table() -> None:
    rules = AlertRules.from_mapping(
        {"error_rate": {"max_percent": 2, "window": "15m"}, "drift": {"enabled": False}}
    )
    assert rules.error_rate.max_percent == 2.0 and rules.error_rate.window == 900.0
    assert not rules.drift.enabled and rules.latency_p99.max_ms == 250.0
    assert rules.interval == 30.0 and rules.webhook is None
    configured = AlertRules.from_mapping(
        {"interval": "1m", "webhook": {"url": "http://127.0.0.1:9/hook", "timeout": "2s"}}
    )
    assert configured.interval == 60.0
    assert configured.webhook == WebhookSettings("http://127.0.0.1:9/hook", 2.0, 3)
    with pytest.raises(ConfigError, match=r"webhook.url: must be an http"):
        AlertRules.from_mapping({"webhook": {"url": "ftp://x"}})
    with pytest.raises(ConfigError, match=r"unknown alert rule 'cpu'"):
        AlertRules.from_mapping({"cpu": {}})
    with pytest.raises(ConfigError, match=r"\[alerts\].error_rate: unknown setting 'max'"):
        AlertRules.from_mapping({"error_rate": {"max": 1}})
    with pytest.raises(ConfigError, match=r"error_rate.window: 'soon' is not a duration"):
        AlertRules.from_mapping({"error_rate": {"window": "soon"}})
    with pytest.raises(ConfigError, match=r"failed_installs.max_count: must be a whole number"):
        AlertRules.from_mapping({"failed_installs": {"max_count": 1.5}})


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        status = server.statuses.pop(0) if server.statuses else 200  # type: ignore[attr-defined]
        server.bodies.append((status, body))  # type: ignore[attr-defined]
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.statuses = []  # type: ignore[attr-defined]
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_webhook_gets_fired_and_resolved_alerts_and_retries_a_server_error(
    store: Store, collector: Collector, hook: ThreadingHTTPServer
) -> None:
    url = f"http://127.0.0.1:{hook.server_address[1]}/alerts"
    webhook = WebhookNotifier(url, timeout=2, attempts=3, backoff=0.01)
    dead = WebhookNotifier("http://127.0.0.1:9/nothing", timeout=1, attempts=2, backoff=0.01)
    recorder = Recorder()
    evaluator = AlertEvaluator(
        store,
        only(devices_offline={"max_count": 0, "max_fraction": None}),
        collector,
        [dead, webhook, recorder],
    )
    Registry(store).record([("d1", State(ts=NOW - 1000, status=Status.OFFLINE))])
    hook.statuses.extend([503])  # type: ignore[attr-defined]
    evaluator.evaluate(NOW)
    Registry(store).record([("d1", State(ts=NOW, status=Status.ONLINE))])
    evaluator.evaluate(NOW + 1)
    bodies = hook.bodies  # type: ignore[attr-defined]
    assert [(status, body["state"]) for status, body in bodies] == [
        (503, "firing"),
        (200, "firing"),
        (200, "resolved"),
    ]
    assert bodies[1][1]["rule"] == "devices_offline" and bodies[1][1]["detail"]["offline"] == 1
    assert dead.failures == 2 and webhook.failures == 0
    assert [state for state, _, _ in recorder.seen] == ["firing", "resolved"]  # went on


def test_alerts_are_published_on_their_mqtt_topic(
    tmp_path: Path, broker_credentials: Credentials, store: Store, collector: Collector
) -> None:
    broker = Broker(tmp_path, broker_credentials)
    # What the deployment ACL must add for the control user (transport/acl.py).
    with (tmp_path / "acl").open("a") as acl:
        acl.write(f"topic readwrite {ALERTS}/#\n")
    broker.start()
    # A plain MQTT client listens, as an operator's tool would (`Connection` reads only the
    # fleet protocol's own topics).
    received: queue.Queue[paho.MQTTMessage] = queue.Queue()
    settings = broker.settings(CONTROL_USER)
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="alert-listener")
    listener.username_pw_set(settings.username, settings.password)
    subscribed = threading.Event()
    listener.on_connect = lambda client, *_: client.subscribe(f"{ALERTS}/#", qos=1)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda client, userdata, message: received.put(message)
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    connection = Connection("control-alerts", settings)
    try:
        assert subscribed.wait(DELIVERY_TIMEOUT)
        connection.start()
        assert connection.wait_connected(DELIVERY_TIMEOUT)
        evaluator = AlertEvaluator(
            store,
            only(devices_offline={"max_count": 0, "max_fraction": None}),
            collector,
            notifiers_for(AlertRules(), connection),
        )
        Registry(store).record([("d1", State(ts=NOW - 1000, status=Status.OFFLINE))])
        evaluator.evaluate(NOW)
        message = received.get(timeout=DELIVERY_TIMEOUT)
        assert message.topic == f"{ALERTS}/devices_offline"
        document = json.loads(message.payload)
        assert (document["state"], document["subject"]) == ("firing", "fleet")
    finally:
        connection.stop()
        listener.loop_stop()
        listener.disconnect()
        broker.stop()
