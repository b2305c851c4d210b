"""`edgewise fleet drift` and `fleet series` against the HTTP API served by a real uvicorn, over
a store the collector filled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fleet_api_server import running_api
from fleet_telemetry import bundle_ref, input_profile, repository_with, window

from edgewise import Bundle
from edgewise.cli import main
from edgewise.datasets import FEATURES
from edgewise.fleet.auth import Role, create_token
from edgewise.fleet.collector import Collector
from edgewise.fleet.references import ReferenceProfiles
from edgewise.fleet.store import Store


@dataclass
class Plane:
    url: str
    token: str


@pytest.fixture(scope="module")
def plane(
    tmp_path_factory: pytest.TempPathFactory, bundle_path: Path, bundle: Bundle
) -> Iterator[Plane]:
    directory = tmp_path_factory.mktemp("control")
    repository = repository_with(directory / "repo", bundle_path)
    ref = bundle_ref(bundle)
    now = time.time()
    with Store.open(directory / "control.db") as store:
        token = create_token(store, "viewer", Role.VIEWER)
        collector = Collector(store, ReferenceProfiles(repository), window=60.0)
        collector.record(
            [
                (
                    f"d{i}",
                    window(
                        ref,
                        now - 900 + 60 * i,
                        inputs=input_profile(200, i, shift=1.0),
                        requests=50,
                        errors=i,
                    ),
                )
                for i in range(10)
            ]
        )
    with running_api(directory / "control.db", repository=repository) as url:
        yield Plane(url, token)


def fleet(plane: Plane, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["fleet", *args], env={"EDGEWISE_API": plane.url, "EDGEWISE_TOKEN": plane.token}
    )
    return result.exit_code, result.output


def test_drift_of_shifted_telemetry(plane: Plane) -> None:
    code, output = fleet(plane, "drift", "credit:3", "--since", "1h", "--json")
    assert code == 0, output
    answer = json.loads(output)
    assert answer["worst"]["psi"] > 0.2
    income = next(c for c in answer["report"]["columns"] if c["name"] == "income")
    assert income["drifted"] and answer["report"]["current"]["rows"] == 2000
    code, output = fleet(plane, "drift", "credit:3")
    assert code == 0 and "credit:3 since" in output
    assert (
        f"{answer['report']['drifted_columns']} of {len(FEATURES)} columns drifted (2000 rows)"
        in output
    )
    assert any(line.startswith("income ") and line.endswith("yes") for line in output.splitlines())


def test_series_per_bucket(plane: Plane) -> None:
    code, output = fleet(plane, "series", "credit:3", "--json")
    assert code == 0, output
    points = json.loads(output)["points"]
    assert sum(p["windows"] for p in points) == 10
    assert sum(p["requests"] for p in points) == 500 and sum(p["errors"] for p in points) == 45
    assert all(p["latency_p99_ms"] == 1.0 for p in points)
    code, output = fleet(plane, "series", "credit:3", "--since", "2h")
    assert code == 0 and output.splitlines()[0].split() == [
        "BUCKET",
        "WINDOWS",
        "REQUESTS",
        "ROWS",
        "ERRORS",
        "P50",
        "MS",
        "P99",
        "MS",
    ]


def test_unknown_bundles_bad_names_and_periods_are_clear(plane: Plane) -> None:
    code, output = fleet(plane, "drift", "credit:99")
    assert code == 1 and "bundle credit:99 has no reference profile here" in output
    code, output = fleet(plane, "drift", "credit:3", "--since", "1s")
    assert code == 1 and "no telemetry of credit:3 in the last 1s" in output
    code, output = fleet(plane, "series", "credit")
    assert code == 2 and "expected NAME:VERSION" in output
    code, output = fleet(plane, "series", "credit:3", "--since", "soon")
    assert code == 1 and "'soon' is not a duration" in output
    code, output = fleet(plane, "series", "credit:77", "--json")
    assert code == 0 and json.loads(output)["points"] == []
