"""The rollouts' HTTP API through FastAPI's TestClient, on SQLite and a real PostgreSQL, with
the engine ticking over the same store."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from rollout_world import Fleet
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Root

from edgewise.fleet.api import create_app
from edgewise.fleet.audit import AuditLog, operator_statement
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.store import Store
from edgewise.trust.operators import set_operator_keys

START = {
    "bundle_name": "credit",
    "bundle_version": 3,
    "selector": "site=berlin",
    "waves": "10%,100%",
    "dwell": "0",
    "auto_rollback": True,
}


@pytest.fixture(scope="module")
def operator_key() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


@pytest.fixture
def fleet(store: Store) -> Fleet:
    fleet = Fleet(store)
    fleet.add(10)
    fleet.add(2, prefix="p", site="paris")
    return fleet


@pytest.fixture
def tokens(store: Store) -> dict[str, dict[str, str]]:
    return {
        role.label: {"Authorization": f"Bearer {create_token(store, role.label, role)}"}
        for role in Role
    }


@pytest.fixture
def client(store: Store, fleet: Fleet, operator_key: CryptoSigner) -> TestClient:
    root = Root()
    set_operator_keys(root, [operator_key.public_key])
    app = create_app(store, root=root, known_bundle=lambda name, version: version == 3)
    with TestClient(app) as test_client:
        yield test_client


def test_viewers_watch_operators_start(
    client: TestClient, tokens: dict[str, dict[str, str]], fleet: Fleet
) -> None:
    refused = client.post("/v1/rollouts", json=START, headers=tokens["viewer"])
    assert refused.status_code == 403
    assert refused.json()["detail"] == "token 'viewer' has role viewer; this needs operator"
    started = client.post("/v1/rollouts", json=START, headers=tokens["operator"])
    assert started.status_code == 201
    rollout = started.json()
    assert (rollout["state"], rollout["wave"], rollout["wave_count"]) == ("running", 1, 2)
    assert rollout["device_states"] == {"pending": 10}
    assert [(w["size"], w["state"], w["device_states"]) for w in rollout["waves"]] == [
        ("10%", "running", {"pending": 1}),
        ("100%", "pending", {"pending": 9}),
    ]
    assert rollout["policy"]["auto_rollback"] is True and rollout["policy"]["dwell"] == "0s"
    [entry] = AuditLog(fleet.store).entries()
    assert (entry.actor, entry.action, entry.payload) == ("operator", "rollout.start", START)

    fleet.engine().tick()
    [canary] = fleet.installs()
    status = client.get(f"/v1/rollouts/{rollout['id']}", headers=tokens["viewer"]).json()
    [row] = [d for d in status["devices"] if d["device_id"] == canary]
    assert (row["wave"], row["state"]) == (1, "sent")
    assert row["reason"].startswith("install command ") and row["sent_at"] is not None
    only_sent = client.get(
        f"/v1/rollouts/{rollout['id']}", params={"state": "sent"}, headers=tokens["viewer"]
    ).json()
    assert [d["device_id"] for d in only_sent["devices"]] == [canary]
    assert only_sent["device_states"] == {"pending": 9, "sent": 1}  # counts stay whole
    listed = client.get("/v1/rollouts", headers=tokens["viewer"]).json()
    assert [(r["id"], r["device_states"]) for r in listed] == [
        (rollout["id"], {"pending": 9, "sent": 1})
    ]
    metrics = client.get("/metrics").text
    assert 'edgewise_rollouts{state="running"} 1.0' in metrics
    assert (
        f'edgewise_rollout_devices{{bundle="credit-3",rollout="{rollout["id"]}",state="sent"}} 1.0'
        in metrics
    )


@pytest.mark.parametrize(
    ("change", "status_code", "message"),
    [
        ({"waves": "10%,50%"}, 422, "--waves '10%,50%': the last wave must be 100%"),
        ({"dwell": "soon"}, 422, "--dwell 'soon': expected a duration like 30s, 10m or 2h"),
        ({"drift_gates": ["psi>0.2"]}, 422, "--drift-gate 'psi>0.2': expected METRIC<THRESHOLD"),
        ({"error_gate": "error_rate<200%"}, 422, "--error-gate 'error_rate<200%': an error"),
        ({"rate": "fast"}, 422, "--rate 'fast': expected a number of commands per s, min or h"),
        ({"max_failure_rate": "150%"}, 422, "--max-failure-rate '150%': must be between"),
        ({"selector": "site="}, 422, "selector 'site=': cannot parse at character 1"),
        ({"selector": "site=rome"}, 422, "selector 'site=rome' matches no device"),
        ({"bundle_version": 4}, 404, "bundle credit-4 is not a target of the repository"),
    ],
)
def test_bad_requests_are_refused_clearly(
    client: TestClient,
    tokens: dict[str, dict[str, str]],
    change: dict[str, Any],
    status_code: int,
    message: str,
) -> None:
    response = client.post("/v1/rollouts", json={**START, **change}, headers=tokens["operator"])
    assert response.status_code == status_code
    assert response.json()["detail"].startswith(message)


def test_pause_resume_abort_follow_the_state_machine(
    client: TestClient, tokens: dict[str, dict[str, str]], operator_key: CryptoSigner
) -> None:
    operator = tokens["operator"]
    rollout_id = client.post("/v1/rollouts", json=START, headers=operator).json()["id"]
    assert (
        client.post(f"/v1/rollouts/{rollout_id}/pause", headers=tokens["viewer"]).status_code == 403
    )
    paused = client.post(f"/v1/rollouts/{rollout_id}/pause", headers=operator)
    assert (paused.status_code, paused.json()["state"]) == (200, "paused")
    again = client.post(f"/v1/rollouts/{rollout_id}/pause", headers=operator)
    assert (again.status_code, again.json()["detail"]) == (
        409,
        f"rollout {rollout_id} is paused; this needs it running",
    )
    resumed = client.post(f"/v1/rollouts/{rollout_id}/resume", json={}, headers=operator)
    assert resumed.json()["state"] == "running"
    statement = {"rollout": rollout_id, "rollback": True}
    signature = operator_key.sign(operator_statement("rollout.abort", statement)).to_dict()
    aborted = client.post(
        f"/v1/rollouts/{rollout_id}/abort",
        json={"rollback": True, "signature": signature},
        headers=operator,
    )
    assert aborted.json()["state"] == "aborted"
    forged = client.post(
        f"/v1/rollouts/{rollout_id}/abort",
        json={"rollback": False, "signature": signature},  # signed for rollback: true
        headers=operator,
    )
    assert forged.status_code == 422
    missing = client.post("/v1/rollouts/999/resume", headers=operator)
    assert (missing.status_code, missing.json()) == (404, {"detail": "no rollout 999"})
    assert client.get("/v1/rollouts/0", headers=tokens["viewer"]).status_code == 422


def test_without_a_bundle_catalogue_nothing_is_rolled_out(
    store: Store, fleet: Fleet, tokens: dict[str, dict[str, str]]
) -> None:
    with TestClient(create_app(store)) as client:
        response = client.post("/v1/rollouts", json=START, headers=tokens["operator"])
    assert response.status_code == 404
