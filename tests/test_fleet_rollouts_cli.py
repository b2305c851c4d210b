"""`edgewise fleet rollout ...` against a real uvicorn over a store and a real TUF repository,
with the engine ticking over the same store in the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_api_server import running_api
from rollout_world import Fleet
from trust_world import World

from edgewise import Bundle
from edgewise.cli import main
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.rollouts.catalogue import repository_catalogue
from edgewise.fleet.store import Store


@dataclass
class ControlPlane:
    url: str
    db: Path
    world: World
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def control_plane(
    tmp_path_factory: pytest.TempPathFactory, bundle: Bundle
) -> Iterator[ControlPlane]:
    world = World(tmp_path_factory.mktemp("rollout-cli"), bundle)
    world.init()
    world.publish()  # credit-3 is a target of the repository
    db = world.tmp / "control.db"
    with Store.open(db) as store:
        tokens = {role.label: create_token(store, f"{role.label}-token", role) for role in Role}
        Fleet(store).add(10)
    with running_api(db, world.tmp / "root.json", world.repo) as url:
        yield ControlPlane(url, db, world, tokens)


def rollout(plane: ControlPlane, *args: str, role: str = "operator") -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["fleet", "rollout", *args],
        env={"EDGEWISE_API": plane.url, "EDGEWISE_TOKEN": plane.tokens[role]},
    )
    return result.exit_code, result.output


def test_the_repository_says_which_bundles_are_known(control_plane: ControlPlane) -> None:
    known = repository_catalogue(control_plane.world.repo)
    assert known("credit", 3) and not known("credit", 4) and not known("other", 3)


def test_a_rollout_started_halted_and_aborted_from_the_command_line(
    control_plane: ControlPlane,
) -> None:
    plane = control_plane
    code, output = rollout(plane, "start", "credit:3", "--select", "site=berlin", role="viewer")
    assert code == 1 and "403 token 'viewer-token' has role viewer" in output
    code, output = rollout(plane, "start", "credit:3", "--waves", "10%,50%")
    assert (code, output.splitlines()[-1]) == (
        2,
        "Error: --waves '10%,50%': the last wave must be 100% (every selected device)",
    )
    code, output = rollout(plane, "start", "credit:4")
    assert (code, output) == (
        1,
        "Error: POST /v1/rollouts: 404 bundle credit-4 is not a target of the repository\n",
    )
    code, output = rollout(plane, "start", "credit")
    assert code == 2 and "give NAME:VERSION (credit:3) or a bundle file" in output

    code, output = rollout(
        plane,
        "start",
        str(plane.world.bundle_path),  # the .ewb file: its manifest names credit-3
        "--select",
        "site=berlin",
        "--waves",
        "10%,100%",
        "--dwell",
        "0",
        "--drift-gate",
        "psi<0.2",
        "--rate",
        "100/min",
        "--auto-rollback",
        "--keys",
        str(plane.world.keys),
    )
    assert (code, output) == (
        0,
        "rollout 1 started: credit-3 to 10 devices in 2 waves (10%: 1, 100%: 9)\n",
    )

    with Store.open(plane.db) as store:
        fleet = Fleet(store)
        engine = fleet.engine()
        engine.tick()
        [canary] = fleet.installs()
        fleet.install_failed(canary, "health check: 3 of 20 rows differ")
        engine.tick()

    code, output = rollout(plane, "status", "1", role="viewer")
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == "rollout 1: credit-3 halted, wave 1 of 2"
    assert lines[1] == (
        "reason    failure rate 1/1 devices (100%) in wave 1 is above --max-failure-rate 5%"
    )
    assert lines[3] == (
        "policy    waves 10%,100%, max failure rate 5%, dwell 0s, install timeout 30m, "
        "rate 100/min, gates psi<0.2, auto-rollback on"
    )
    assert lines[6:9] == [
        "WAVE  SIZE  STATE    DEVICES  OK  FAILED  ACTIVE  PENDING  ROLLED BACK  REASON",
        "1     10%   halted   1        0   1       0       0        0            failure rate "
        "1/1 devices (100%) in wave 1 is above --max-failure-rate 5%",
        "2     100%  pending  9        0   0       0       9        0            -",
    ]
    code, output = rollout(plane, "status", "1", "--state", "failed", role="viewer")
    assert output.splitlines()[-2:] == [
        "DEVICE  WAVE  STATE   SENT                  REASON",
        f"{canary}    1     failed  2023-11-14 22:13:20Z  install failed: health check: 3 of 20 "
        "rows differ",
    ]
    code, output = rollout(plane, "status", "1", "--json", role="viewer")
    assert json.loads(output)["device_states"] == {"failed": 1, "pending": 9}

    code, output = rollout(plane, "list", role="viewer")
    assert output.splitlines()[1].split()[:5] == ["1", "credit-3", "halted", "1/2", "1"]

    code, output = rollout(plane, "resume", "1")
    assert (code, output) == (
        1,
        "Error: POST /v1/rollouts/1/resume: 409 rollout 1 is halted; this needs it paused\n",
    )
    code, output = rollout(plane, "abort", "1", "--keys", str(plane.world.keys))
    assert (code, output) == (0, "rollout 1: aborted (aborted by operator-token)\n")

    result = CliRunner().invoke(
        main,
        ["fleet", "audit", "verify", "--json"],
        env={"EDGEWISE_API": plane.url, "EDGEWISE_TOKEN": plane.tokens["viewer"]},
    )
    verification = json.loads(result.output)
    assert verification["ok"] and verification["signatures_checked"]
    assert (verification["entries"], verification["signed"]) == (3, 2)  # start, halt, abort
