"""The control plane's HTTP API through FastAPI's TestClient, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root

from edgewise.fleet.api import create_app
from edgewise.fleet.audit import AuditLog, operator_statement
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.store import DeviceEvent, Store
from edgewise.trust.operators import set_operator_keys


@pytest.fixture(scope="module")
def operator_key() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def tokens(store: Store) -> dict[str, str]:
    return {role.label: create_token(store, role.label, role) for role in Role}


@pytest.fixture
def client(store: Store, operator_key: CryptoSigner) -> TestClient:
    root = Root()
    set_operator_keys(root, [operator_key.public_key])
    store.upsert_device("b1", online=True, last_seen=1_700_000_000.0, bundle=("credit", 3))
    store.update_labels("b1", {"site": "berlin", "hw": "pi4"})
    store.upsert_device("p1")
    store.update_labels("p1", {"site": "paris"})
    store.record_event(DeviceEvent("b1", "installed", 1_700_000_000.0, {"bundle": "credit-3"}))
    with TestClient(create_app(store, root=root)) as test_client:
        yield test_client


def as_role(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def test_devices_are_listed_and_selected(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/v1/devices", headers=as_role(tokens, "viewer"))
    assert response.status_code == 200
    assert [device["id"] for device in response.json()] == ["b1", "p1"]
    berlin = client.get(
        "/v1/devices", params={"select": "site=berlin,hw!=pi3"}, headers=as_role(tokens, "viewer")
    ).json()
    assert berlin == [
        {
            "id": "b1",
            "labels": {"hw": "pi4", "site": "berlin"},
            "online": True,
            "last_seen": "2023-11-14T22:13:20Z",
            "bundle_name": "credit",
            "bundle_version": 3,
            "slots": {},
        }
    ]


def test_a_device_shows_its_recent_events(client: TestClient, tokens: dict[str, str]) -> None:
    device = client.get("/v1/devices/b1", headers=as_role(tokens, "viewer")).json()
    assert [(e["kind"], e["detail"]) for e in device["events"]] == [
        ("installed", {"bundle": "credit-3"})
    ]


def test_clear_errors(client: TestClient, tokens: dict[str, str]) -> None:
    viewer = as_role(tokens, "viewer")
    missing = client.get("/v1/devices/ghost", headers=viewer)
    assert (missing.status_code, missing.json()) == (404, {"detail": "no device 'ghost'"})
    bad_selector = client.get("/v1/devices", params={"select": "site="}, headers=viewer)
    assert bad_selector.status_code == 422
    assert "cannot parse at character 1" in bad_selector.json()["detail"]
    bad_label = client.post(
        "/v1/devices/b1/labels", json={"set": {"site": "a b"}}, headers=as_role(tokens, "operator")
    )
    assert bad_label.status_code == 422
    assert client.get("/v1/devices/bad%00id", headers=viewer).status_code == 422


def test_tokens_and_roles_are_checked(client: TestClient, tokens: dict[str, str]) -> None:
    unauthenticated = client.get("/v1/devices")
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
    assert (
        client.get("/v1/devices", headers={"Authorization": "Bearer ewt_wrong"}).status_code == 401
    )
    forbidden = client.post(
        "/v1/devices/b1/labels", json={"set": {"ring": "canary"}}, headers=as_role(tokens, "viewer")
    )
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "token 'viewer' has role viewer; this needs operator"}
    new = {"name": "ci", "role": "viewer"}
    assert (
        client.post("/v1/tokens", json=new, headers=as_role(tokens, "operator")).status_code == 403
    )
    created = client.post("/v1/tokens", json=new, headers=as_role(tokens, "admin"))
    assert created.status_code == 201 and created.json()["token"].startswith("ewt_")
    ci = {"Authorization": f"Bearer {created.json()['token']}"}
    assert client.get("/v1/alerts", headers=ci).status_code == 200
    made = client.get("/v1/audit", headers=ci).json()[-1]
    assert (made["actor"], made["action"], made["payload"]) == ("admin", "token.create", new)
    assert client.post("/v1/tokens", json=new, headers=as_role(tokens, "admin")).status_code == 409


def test_labelling_is_audited_and_verifiable(
    client: TestClient, tokens: dict[str, str], store: Store, operator_key: CryptoSigner
) -> None:
    operator = as_role(tokens, "operator")
    labelled = client.post(
        "/v1/devices/b1/labels",
        json={"set": {"ring": "canary"}, "remove": ["hw"]},
        headers=operator,
    )
    assert labelled.status_code == 200
    assert labelled.json()["labels"] == {"ring": "canary", "site": "berlin"}
    payload = {"device": "p1", "set": {"ring": "late"}, "remove": []}
    signature = operator_key.sign(operator_statement("label", payload)).to_dict()
    client.post(
        "/v1/devices/p1/labels",
        json={"set": {"ring": "late"}, "signature": signature},
        headers=operator,
    ).raise_for_status()
    assert (
        client.post(
            "/v1/devices/ghost/labels", json={"set": {"a": "b"}}, headers=operator
        ).status_code
        == 404
    )

    forged = client.post(
        "/v1/devices/p1/labels",
        json={"set": {"ring": "early"}, "signature": signature},  # signed for "late"
        headers=operator,
    )
    assert forged.status_code == 422 and "does not match the payload" in forged.json()["detail"]
    entries = client.get("/v1/audit", headers=as_role(tokens, "viewer")).json()
    assert [(e["seq"], e["actor"], e["action"], e["payload"]["device"]) for e in entries] == [
        (1, "operator", "label", "b1"),
        (2, "operator", "label", "p1"),
    ]
    verified = client.get("/v1/audit/verify", headers=as_role(tokens, "viewer")).json()
    assert verified == {
        "ok": True,
        "entries": 2,
        "signed": 1,
        "signatures_checked": True,
        "head": AuditLog(store).entries()[-1].hash,
        "broken_at": None,
        "reason": None,
    }
    with store.transaction() as cursor:
        cursor.execute("UPDATE audit_log SET actor = 'someone' WHERE seq = 1")
    broken = client.get("/v1/audit/verify", headers=as_role(tokens, "viewer")).json()
    assert (broken["ok"], broken["broken_at"]) == (False, 1)


def test_alerts_are_listed_by_state(
    client: TestClient, tokens: dict[str, str], store: Store
) -> None:
    store.fire_alert("drift", "credit-3", "drift:credit-3", {"psi": 0.31}, at=1_700_000_000.0)
    store.fire_alert("offline", "p1", "offline:p1", {}, at=1_700_000_100.0)
    store.resolve_alert("offline:p1", at=1_700_000_200.0)
    viewer = as_role(tokens, "viewer")
    assert [a["rule"] for a in client.get("/v1/alerts", headers=viewer).json()] == [
        "offline",
        "drift",
    ]
    firing = client.get("/v1/alerts", params={"state": "firing"}, headers=viewer).json()
    assert [(a["rule"], a["detail"]) for a in firing] == [("drift", {"psi": 0.31})]
    assert client.get("/v1/alerts", params={"state": "gone"}, headers=viewer).status_code == 422


def test_health_metrics_and_openapi(
    client: TestClient, tokens: dict[str, str], store: Store
) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] == store.backend
    client.get("/v1/devices/ghost", headers=as_role(tokens, "viewer"))
    text = client.get("/metrics").text
    assert 'edgewise_devices{state="online"} 1.0' in text
    assert 'edgewise_devices{state="offline"} 1.0' in text
    assert "edgewise_device_events_total 1.0" in text
    assert (
        'edgewise_http_requests_total{method="GET",route="/v1/devices/{device_id}",'
        'status="404"} 1.0'
    ) in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/devices", "/v1/devices/{device_id}/labels", "/v1/audit/verify"} <= set(
        schema["paths"]
    )
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
