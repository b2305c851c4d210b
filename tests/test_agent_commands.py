"""Commands act only when signed by an operator key of the trusted root, addressed to this
device, unexpired and newer than the last one accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trust_world import World

from edgewise.agent.commands import CommandVerifier, new_command, sign_command
from edgewise.exceptions import CommandError
from edgewise.trust import generate_key
from edgewise.trust.keys import PRIVATE_SUFFIX, load_signer


def verifier(world: World, tmp_path: Path, device: str = "dev-a") -> CommandVerifier:
    return CommandVerifier(device, tmp_path / "agent", lambda: world.load("root.json").signed)


def install(device: str = "dev-a", **kwargs) -> object:
    return new_command(device, "install", bundle=("credit", 4), **kwargs)


def test_signed_command_is_accepted_once(world, tmp_path):
    check = verifier(world, tmp_path)
    data = sign_command(install(seq=7), world.signer("operator"))
    command = check.accept(data)
    assert (command.action, command.bundle_name, command.bundle_version) == ("install", "credit", 4)
    assert check.last_seq == 7
    with pytest.raises(CommandError, match="sequence 7 is not above the last accepted"):
        check.accept(data)
    # The record survives a restart (a new verifier over the same state directory).
    with pytest.raises(CommandError, match="a replay"):
        verifier(world, tmp_path).accept(data)


def test_older_sequence_is_refused(world, tmp_path):
    check = verifier(world, tmp_path)
    check.accept(sign_command(install(seq=10), world.signer("operator")))
    with pytest.raises(CommandError, match="sequence 9 is not above the last accepted"):
        check.accept(sign_command(install(seq=9), world.signer("operator")))


def test_command_for_another_device_is_refused(world, tmp_path):
    data = sign_command(install("dev-b"), world.signer("operator"))
    with pytest.raises(CommandError, match="addressed to device 'dev-b', not to this device"):
        verifier(world, tmp_path).accept(data)


def test_expired_command_is_refused(world, tmp_path):
    data = sign_command(install(lifetime=-5), world.signer("operator"))
    with pytest.raises(CommandError, match="expired"):
        verifier(world, tmp_path).accept(data)


def test_edited_payload_is_refused(world, tmp_path):
    document = json.loads(sign_command(install(), world.signer("operator")))
    document["payload"] = document["payload"].replace('"version":4', '"version":1')
    with pytest.raises(CommandError, match="does not match the payload"):
        verifier(world, tmp_path).accept(json.dumps(document).encode())


def test_command_signed_by_a_key_that_is_not_an_operator_key_is_refused(world, tmp_path):
    stranger_dir = tmp_path / "stranger"
    key = generate_key(stranger_dir, "operator")
    stranger = load_signer(stranger_dir / f"operator{PRIVATE_SUFFIX}", key)
    with pytest.raises(CommandError, match="not an operator key of root version 1"):
        verifier(world, tmp_path).accept(sign_command(install(), stranger))
    # A repository key is trusted for metadata, not for commands.
    with pytest.raises(CommandError, match="not an operator key"):
        verifier(world, tmp_path).accept(sign_command(install(), world.signer("targets")))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"v": 2, "type": "command", "payload": "{}", "signatures": []}', "version 2"),
        (b'{"v": 1, "type": "command", "payload": "{}", "signatures": []}', "1 to 8 signatures"),
        (
            b'{"v": 1, "type": "command", "payload": "{}", "signatures": [{"keyid": 1}]}',
            "malformed signature",
        ),
    ],
)
def test_malformed_commands_are_refused_with_a_reason(world, tmp_path, data, reason):
    with pytest.raises(CommandError, match=reason):
        verifier(world, tmp_path).accept(data)


def test_rollback_names_no_bundle(world, tmp_path):
    command = verifier(world, tmp_path).accept(
        sign_command(new_command("dev-a", "rollback"), world.signer("operator"))
    )
    assert (command.action, command.bundle_name) == ("rollback", None)
    with pytest.raises(CommandError, match="a rollback does not"):
        new_command("dev-a", "rollback", bundle=("credit", 4))
