"""A/B installs: verify, health-check, switch atomically; failures keep the serving slot; a
process killed at any step restarts into the previous model or the new verified one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from agent_support import ref_of, with_wrong_expectations
from trust_world import World, variant

from edgewise.agent.crashpoints import CRASH_ENV
from edgewise.agent.health import HealthPolicy
from edgewise.agent.install import Installer
from edgewise.agent.slots import SlotStore
from edgewise.exceptions import InstallError
from edgewise.model import Model
from edgewise.transport import SlotStatus

TESTS = Path(__file__).parent
PROCESS_TIMEOUT = 120


def installer(world: World, state: Path, policy: HealthPolicy | None = None) -> Installer:
    client = world.client()
    return Installer(
        SlotStore(state),
        lambda path: client.verify_file(path, record=False),
        policy or HealthPolicy(),
    )


def download(world: World, path: Path, directory: Path) -> Path:
    """A copy of a published bundle, as the transfer would leave it in the download area."""
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(path, directory / path.name))


@pytest.fixture
def two_versions(world: World, tmp_path: Path) -> tuple[Path, Path]:
    first = world.publish()
    second = world.publish(variant(world.bundle, version=world.bundle.version + 1))
    return first, second


def test_first_install_activates_slot_a_and_second_goes_to_b(world, two_versions, tmp_path):
    state = tmp_path / "state"
    first, second = two_versions
    one = installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))
    assert (one.slot, one.previous) == ("a", None)
    assert one.health.rows > 0 and one.health.max_abs_diff <= 1e-6
    two = installer(world, state).install(download(world, second, tmp_path / "dl"), ref_of(second))
    assert (two.slot, two.previous) == ("b", ref_of(first))
    table = SlotStore(state).load()
    assert table.active == "b"
    assert table.slots["a"].status is SlotStatus.INSTALLED
    assert table.slots["b"].status is SlotStatus.ACTIVE
    assert Model.load(SlotStore(state).bundle_path("b")).version == world.bundle.version + 1


def test_rollback_serves_the_previous_slot_again(world, two_versions, tmp_path):
    state = tmp_path / "state"
    first, second = two_versions
    installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))
    installer(world, state).install(download(world, second, tmp_path / "dl"), ref_of(second))
    table = installer(world, state).rollback()
    assert table.active == "a" and table.active_bundle == ref_of(first)
    assert table.slots["b"].status is SlotStatus.INSTALLED


def test_failed_health_check_keeps_the_serving_slot_and_says_why(world, two_versions, tmp_path):
    state = tmp_path / "state"
    first, _ = two_versions
    installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))
    broken = world.publish(with_wrong_expectations(world.bundle, version=9))
    with pytest.raises(InstallError, match=r"scores differ from the expected ones by up to 0\.25"):
        installer(world, state).install(download(world, broken, tmp_path / "dl"), ref_of(broken))
    table = SlotStore(state).load()
    assert table.active == "a" and table.active_bundle == ref_of(first)
    assert table.slots["b"].status is SlotStatus.FAILED
    assert "health check" in (table.slots["b"].reason or "")
    assert not SlotStore(state).bundle_path("b").exists()


def test_latency_bound_fails_a_model_too_slow_for_the_device(world, two_versions, tmp_path):
    first, _ = two_versions
    slow = HealthPolicy(max_ms_per_row=0.0)
    with pytest.raises(InstallError, match="ms per row, over the bound of 0 ms"):
        installer(world, tmp_path / "state", slow).install(
            download(world, first, tmp_path / "dl"), ref_of(first)
        )


def test_unsigned_bytes_are_never_installed(world, two_versions, tmp_path):
    state = tmp_path / "state"
    first, second = two_versions
    installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))
    forged = tmp_path / "dl" / second.name
    unsigned = variant(world.bundle, version=world.bundle.version + 1, name=world.bundle.name)
    data = bytearray(unsigned.to_bytes())
    forged.parent.mkdir(exist_ok=True)
    forged.write_bytes(bytes(data) + b"\0" * 512)  # same name and version, other bytes
    with pytest.raises(InstallError, match="signed"):
        installer(world, state).install(forged, ref_of(second))
    assert SlotStore(state).load().active_bundle == ref_of(first)


def test_older_version_is_refused_after_a_newer_was_accepted(world, two_versions, tmp_path):
    state = tmp_path / "state"
    first, _ = two_versions
    world.client().accepted.record(world.bundle.name, world.bundle.version + 1)
    with pytest.raises(InstallError, match="older than version"):
        installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))


CRASH_POINTS = [
    "pointer.written@1",  # while marking the slot
    "install.marked",
    "install.written",
    "install.verified",
    "install.checked",
    "pointer.written@2",  # while switching
    "install.switched",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_install_restarts_into_old_or_new_model_never_a_partial_one(
    world, two_versions, tmp_path, point
):
    state = tmp_path / "state"
    first, second = two_versions
    installer(world, state).install(download(world, first, tmp_path / "dl"), ref_of(first))
    new = ref_of(second)
    process = subprocess.run(
        [
            sys.executable,
            str(TESTS / "agent_install_process.py"),
            str(state),
            str(world.repo),
            str(world.tmp / "root.json"),
            str(world.state),
            str(download(world, second, tmp_path / "dl")),
            new.name,
            str(new.version),
            new.sha256,
            str(new.length),
        ],
        env={**os.environ, CRASH_ENV: point},
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert process.returncode == -9, process.stderr  # killed where asked, not finished
    table, _ = SlotStore(state).recover()
    served = table.active_bundle
    expected = new if point == "install.switched" else ref_of(first)
    assert served == expected
    assert table.active is not None
    assert SlotStore(state).holds(table.active, served)
    assert Model.load(SlotStore(state).bundle_path(table.active)).version == served.version
    other = table.other(table.active)
    if table.slots[other].status is SlotStatus.INSTALLED:
        assert SlotStore(state).holds(other, ref_of(first))
    else:  # an abandoned install leaves no file behind
        assert table.slots[other].status in (SlotStatus.EMPTY, SlotStatus.FAILED)
        assert not SlotStore(state).bundle_path(other).exists()
        # and the device can install the new bundle after the repair
        retry = download(world, second, tmp_path / "retry")
        assert installer(world, state).install(retry, new).table.active_bundle == new
