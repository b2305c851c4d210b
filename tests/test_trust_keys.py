"""Key files on disk, passphrases, and the operator keys recorded in signed root metadata."""

from __future__ import annotations

import stat

import pytest
from securesystemslib.signer import CryptoSigner

from edgewise import TrustError
from edgewise.trust import KeyRing, init_keys, operator_keys, verify_operator_signature
from edgewise.trust.keys import PASSPHRASE_ENV, generate_key, load_signer


def test_keys_init_makes_private_files_0600_and_public_key_files(tmp_path):
    keys = init_keys(tmp_path / "keys")
    assert list(keys) == [
        "root-1",
        "root-2",
        "root-3",
        "targets",
        "snapshot",
        "timestamp",
        "operator",
    ]
    for name, key in keys.items():
        private = tmp_path / "keys" / f"{name}.key"
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
        assert b"BEGIN PRIVATE KEY" in private.read_bytes()
        assert KeyRing([tmp_path / "keys"]).public_key(name).keyid == key.keyid
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    with pytest.raises(TrustError, match=r"already holds keys \(root-1, root-2"):
        init_keys(tmp_path / "keys")


def test_a_passphrase_encrypts_private_keys(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    key = generate_key(tmp_path, "targets")
    private = tmp_path / "targets.key"
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in private.read_bytes()
    assert load_signer(private, key).public_key.keyid == key.keyid
    monkeypatch.delenv(PASSPHRASE_ENV)
    with pytest.raises(TrustError, match=rf"targets\.key: .*\${PASSPHRASE_ENV}"):
        load_signer(private, key)
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    with pytest.raises(TrustError, match=r"targets\.key: cannot decrypt"):
        load_signer(private, key)


def test_operator_keys_come_from_the_verified_root(world):
    world.publish()
    root = world.client().trusted_root()
    assert list(operator_keys(root)) == [world.public["operator"].keyid]
    command = b'{"command": "rollout", "bundle": "credit-3.ewb"}'
    signature = world.signer("operator").sign(command)
    assert verify_operator_signature(root, command, signature).keyid == signature.keyid
    with pytest.raises(TrustError, match=r"does not match the payload"):
        verify_operator_signature(root, command + b" ", signature)
    stranger = CryptoSigner.generate_ed25519().sign(command)
    with pytest.raises(TrustError, match=r"not an operator key of root version 1"):
        verify_operator_signature(root, command, stranger)
    # A targets key is trusted for bundles, not for commands.
    with pytest.raises(TrustError, match=r"not an operator key"):
        verify_operator_signature(root, command, world.signer("targets").sign(command))
