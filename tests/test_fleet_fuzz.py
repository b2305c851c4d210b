"""schemathesis sends requests generated from the API's OpenAPI schema to a real uvicorn, over
SQLite and a real PostgreSQL: none may end in a server error.

It runs as schemathesis's own command line: its pytest plugin does not work with pytest 9.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fleet_api_server import running_api

from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.rollouts import RolloutPolicy, start_rollout
from edgewise.fleet.selector import Selector
from edgewise.fleet.store import DeviceEvent, Store


@pytest.mark.slow
def test_no_generated_request_makes_a_server_error(store_url: str, tmp_path: Path) -> None:
    with Store.open(store_url) as store:
        store.upsert_device("b1", online=True, last_seen=1_700_000_000.0, bundle=("credit", 3))
        store.update_labels("b1", {"site": "berlin"})
        store.record_event(DeviceEvent("b1", "installed", 1_700_000_000.0, {"bundle": "b"}))
        store.fire_alert("drift", "credit-3", "drift:credit-3", {"psi": 0.3}, 1_700_000_000.0)
        # A rollout to pause, resume, abort and read (the API refuses new ones: no repository).
        start_rollout(
            store,
            ("credit", 4),
            Selector.parse("site=berlin"),
            RolloutPolicy.parse(),
            actor="seed",
            statement={},
            signature=None,
            now=1_700_000_000.0,
        )
        token = create_token(store, "fuzzer", Role.ADMIN)
    with running_api(store_url) as url:
        result = subprocess.run(
            [
                Path(sys.executable).with_name("st"),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"Authorization: Bearer {token}",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "100",
                "--seed",
                "7",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
