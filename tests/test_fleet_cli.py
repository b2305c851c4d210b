"""`edgewise fleet ...` against the HTTP API served by a real uvicorn on a loopback port."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_api_server import free_port, running_api
from tuf.api.metadata import Metadata, Root

from edgewise.cli import main
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.store import DeviceEvent, Store
from edgewise.trust.keys import init_keys
from edgewise.trust.operators import set_operator_keys


@dataclass
class ControlPlane:
    url: str
    db: Path
    keys: Path
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("control")
    db, keys = directory / "control.db", directory / "keys"
    public = init_keys(keys)
    root = Root()
    set_operator_keys(root, [public["operator"]])
    Metadata(root).to_file(str(directory / "root.json"))
    with Store.open(db) as store:
        tokens = {role.label: create_token(store, f"{role.label}-token", role) for role in Role}
        store.upsert_device(
            "berlin-1",
            online=True,
            last_seen=1_700_000_000.0,
            bundle=("credit", 3),
            slots={"a": "credit-3"},
        )
        store.update_labels("berlin-1", {"site": "berlin", "hw": "pi4"})
        store.upsert_device("paris-1", online=False)
        store.update_labels("paris-1", {"site": "paris", "hw": "pi3"})
        store.record_event(
            DeviceEvent("berlin-1", "installed", 1_700_000_000.0, {"bundle": "credit-3"})
        )
        store.fire_alert("drift", "credit-3", "drift:credit-3", {"psi": 0.31}, 1_700_000_000.0)
    with running_api(db, directory / "root.json") as url:
        yield ControlPlane(url, db, keys, tokens)


def fleet(plane: ControlPlane, *args: str, role: str = "viewer") -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["fleet", *args],
        env={"EDGEWISE_API": plane.url, "EDGEWISE_TOKEN": plane.tokens[role]},
    )
    return result.exit_code, result.output


def test_devices_table_and_selector(control_plane: ControlPlane) -> None:
    code, output = fleet(control_plane, "devices")
    assert code == 0
    assert output.splitlines() == [
        "DEVICE    STATE    BUNDLE    LAST SEEN             LABELS",
        "berlin-1  online   credit-3  2023-11-14 22:13:20Z  hw=pi4,site=berlin",
        "paris-1   offline  -         -                     hw=pi3,site=paris",
    ]
    code, output = fleet(control_plane, "devices", "--select", "hw!=pi4", "--json")
    assert code == 0 and [d["id"] for d in json.loads(output)] == ["paris-1"]


def test_one_device(control_plane: ControlPlane) -> None:
    code, output = fleet(control_plane, "device", "berlin-1")
    assert code == 0
    assert "bundle     credit-3" in output and "installed" in output
    code, output = fleet(control_plane, "device", "nowhere-9")
    assert (code, output) == (1, "Error: GET /v1/devices/nowhere-9: 404 no device 'nowhere-9'\n")


def test_labels_need_an_operator_and_are_signed_and_audited(control_plane: ControlPlane) -> None:
    code, output = fleet(control_plane, "label", "paris-1", "ring=late")
    assert code == 1
    assert "403 token 'viewer-token' has role viewer; this needs operator" in output
    code, output = fleet(
        control_plane,
        "label",
        "paris-1",
        "ring=late",
        "hw-",
        "--keys",
        str(control_plane.keys),
        role="operator",
    )
    assert (code, output) == (0, "paris-1: ring=late,site=paris\n")
    code, output = fleet(control_plane, "label", "paris-1", "oops", role="operator")
    assert code == 2 and "use key=value to set, key- to remove" in output

    code, output = fleet(control_plane, "audit", "verify")
    assert code == 0
    assert output.startswith("audit log intact: 1 entries, 1 signed (signatures checked); head ")
    code, output = fleet(control_plane, "audit", "verify", "--json")
    assert json.loads(output)["signed"] == 1


def test_a_tampered_audit_log_fails_verification(control_plane: ControlPlane) -> None:
    fleet(control_plane, "label", "berlin-1", "ring=canary", role="operator")
    with Store.open(control_plane.db) as store, store.transaction() as cursor:
        cursor.execute("UPDATE audit_log SET payload = ? WHERE seq = 1", ('{"device":"x"}',))
    code, output = fleet(control_plane, "audit", "verify")
    assert (code, output) == (
        1,
        "Error: audit log broken at entry 1: entry 1 was changed after it was written: its "
        "hash does not match\n",
    )


def test_alerts(control_plane: ControlPlane) -> None:
    code, output = fleet(control_plane, "alerts", "--state", "firing")
    assert code == 0
    assert output.splitlines()[1].split() == [
        "firing",
        "drift",
        "credit-3",
        "2023-11-14",
        "22:13:20Z",
        "-",
        '{"psi":',
        "0.31}",
    ]
    code, output = fleet(control_plane, "alerts", "--json")
    assert [a["rule"] for a in json.loads(output)] == ["drift"]


def test_missing_token_and_unreachable_api_are_clear(control_plane: ControlPlane) -> None:
    result = CliRunner().invoke(
        main, ["fleet", "devices", "--api", control_plane.url], env={"EDGEWISE_TOKEN": ""}
    )
    assert result.exit_code == 1
    assert "401 a valid bearer token is needed" in result.output
    result = CliRunner().invoke(
        main, ["fleet", "alerts", "--api", f"http://127.0.0.1:{free_port()}"]
    )
    assert result.exit_code == 1 and "Error: cannot reach the control plane" in result.output


def test_tokens_are_made_in_the_store(control_plane: ControlPlane, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["fleet", "token", "create", "robot", "--role", "operator", "--db", str(control_plane.db)],
    )
    assert result.exit_code == 0 and result.output.startswith("ewt_")
    request = urllib.request.Request(
        f"{control_plane.url}/v1/devices",
        headers={"Authorization": f"Bearer {result.output.strip()}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    again = CliRunner().invoke(
        main, ["fleet", "token", "create", "robot", "--db", str(control_plane.db)]
    )
    assert (again.exit_code, again.output) == (1, "Error: a token named 'robot' already exists\n")


def test_metrics_over_real_http(control_plane: ControlPlane) -> None:
    with urllib.request.urlopen(f"{control_plane.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'edgewise_devices{state="online"} 1.0' in text
    assert 'route="/healthz"' in text
