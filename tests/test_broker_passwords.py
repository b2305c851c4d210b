"""The password file is Mosquitto's, both ways; the ACL evaluates as Mosquitto's acl_file."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from mqtt_broker import DELIVERY_TIMEOUT, Broker, Credentials, find_binary

from edgewise.broker import hash_password, read_password_file, set_password, verify_password
from edgewise.exceptions import BrokerConfigError
from edgewise.transport import Connection
from edgewise.transport.acl import Access, Acl, Rule, fleet_acl, mosquitto_acl, render_mosquitto


@pytest.mark.parametrize("algorithm", ["sha512-pbkdf2", "sha512"])  # Mosquitto 2.0, 1.x
def test_hashes_made_by_mosquitto_passwd_verify(tmp_path: Path, algorithm: str) -> None:
    path = tmp_path / "passwords"
    path.touch(mode=0o600)
    subprocess.run(
        [find_binary("mosquitto_passwd"), "-H", algorithm, "-b", str(path), "dev-a", "s3cret"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    encoded = read_password_file(path)["dev-a"]
    assert encoded.startswith("$7$" if algorithm == "sha512-pbkdf2" else "$6$")
    assert verify_password("s3cret", encoded)
    assert not verify_password("s3creT", encoded)
    assert not verify_password("", encoded)


def test_a_file_written_here_is_accepted_by_mosquitto(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    set_password(path, "dev-a", "from edgewise")
    set_password(path, "dev-b", "temporary")
    set_password(path, "dev-b", None)  # deleted again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(read_password_file(path)) == ["dev-a"]
    directory = tmp_path / "mosquitto"
    directory.mkdir(mode=0o700)
    mosquitto = Broker(directory, Credentials(path, {"dev-a": "from edgewise"}))
    mosquitto.start()
    try:
        with Connection("dev-a", mosquitto.settings("dev-a")) as device:
            assert device.wait_connected(DELIVERY_TIMEOUT), mosquitto.log_text()
    finally:
        mosquitto.stop()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dev-a", "line 2: expected `username:hash`"),
        ("dev-a:plaintext", "line 2 (user 'dev-a'): expected a Mosquitto $7$"),
        ("dev-a:$7$101$!!!$abc", "line 2 (user 'dev-a'): bad base64"),
        ("dev-a:$7$0$YWJj$YWJj", "iteration count 0 out of range"),
        ("dev-a:$6$YWJj$YWJj", "the hash is not SHA-512 sized"),
        ("control:" + hash_password("x", iterations=1), "line 2: user 'control' appears twice"),
    ],
)
def test_an_unreadable_password_file_names_the_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "passwords"
    path.write_text(f"control:{hash_password('x', iterations=1)}\n{line}\n")
    with pytest.raises(BrokerConfigError) as caught:
        read_password_file(path)
    assert str(caught.value).startswith(f"{path}, line 2")
    assert message in str(caught.value)


def test_deleting_a_user_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    set_password(path, "dev-a", "x")
    with pytest.raises(BrokerConfigError, match="no user 'dev-b' to delete"):
        set_password(path, "dev-b", None)


FLEET = Acl(fleet_acl())
DEV_A = "edgewise/v1/devices/dev-a"


@pytest.mark.parametrize(
    ("user", "topic", "access", "allowed"),
    [
        ("dev-a", f"{DEV_A}/state", Access.WRITE, True),
        ("dev-a", f"{DEV_A}/telemetry", Access.WRITE, True),
        ("dev-a", f"{DEV_A}/state", Access.READ, False),
        ("dev-b", f"{DEV_A}/state", Access.WRITE, False),
        ("dev-a", f"{DEV_A}/cmd", Access.READ, True),
        ("dev-a", f"{DEV_A}/cmd", Access.WRITE, False),
        ("dev-b", f"{DEV_A}/xfer", Access.READ, False),
        ("dev-a", "edgewise/v1/tuf/root/3", Access.READ, True),
        ("dev-a", "edgewise/v1/tuf/root", Access.WRITE, False),
        ("dev-a", "edgewise/v1/alerts/drift", Access.READ, False),
        ("control", f"{DEV_A}/events", Access.READ, True),
        ("control", f"{DEV_A}/cmd", Access.WRITE, True),
        ("control", f"{DEV_A}/cmd", Access.READ, False),
        ("control", "edgewise/v1/tuf/timestamp", Access.WRITE, True),
        ("control", "edgewise/v1/alerts/drift/fired", Access.WRITE, True),
        ("control", "edgewise/v1/alerts/drift/fired", Access.READ, True),
        ("control", "edgewise/v1/devices/dev-a/state/extra", Access.READ, False),
        (None, "edgewise/v1/tuf/root", Access.READ, False),  # anonymous: nothing
        ("", "edgewise/v1/devices//state", Access.WRITE, False),
        ("a/b", "edgewise/v1/devices/a/b/state", Access.WRITE, False),  # %u with structure
    ],
)
def test_the_fleet_acl_evaluates_as_mosquitto_reads_it(
    user: str | None, topic: str, access: Access, allowed: bool
) -> None:
    assert FLEET.allows(user, topic, access) is allowed


def test_rules_render_as_pattern_lines_then_one_section_per_user() -> None:
    rules = [
        Rule(Access.READ, "a/%u/#"),
        Rule(Access.WRITE, "b/+", "alice"),
        Rule(Access.READWRITE, "c", "bob"),
        Rule(Access.READ, "d", "alice"),
    ]
    assert render_mosquitto(rules).splitlines()[1:] == [
        "pattern read a/%u/#",
        "",
        "user alice",
        "topic write b/+",
        "topic read d",
        "",
        "user bob",
        "topic readwrite c",
    ]
    assert "topic readwrite edgewise/v1/alerts/#" in mosquitto_acl().splitlines()
