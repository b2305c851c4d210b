"""Attacks on who signed: unknown keys, too few keys, repeated signatures, bad root rotations,
revoked keys and publishers reaching past their delegation."""

from __future__ import annotations

import json

import pytest
from securesystemslib.signer import CryptoSigner
from trust_world import variant
from tuf.api.metadata import TargetFile

from edgewise import TrustError
from edgewise.trust import BundleTarget, init_keys
from edgewise.trust.keys import generate_key


def test_targets_signed_by_an_unknown_key_are_refused(world):
    world.publish()
    evil = world.publish(variant(world.bundle, version=9))
    stranger = CryptoSigner.generate_ed25519()
    version = world.current("targets")
    # The attacker holds the online snapshot and timestamp keys, but not the targets key.
    world.forge("targets.json", lambda s: None, [stranger], write_as=[f"{version}.targets.json"])
    with pytest.raises(
        TrustError, match=r"not signed by enough trusted keys: targets was signed by 0/1"
    ):
        world.verify(evil)


def test_new_root_below_the_threshold_is_refused(world):
    world.publish()

    def bump(root):
        root.version += 1

    world.forge("root.json", bump, [world.signer("root-1")], write_as=["2.root.json"])
    with pytest.raises(
        TrustError, match=r"not signed by enough trusted keys: root was signed by 1/2"
    ):
        world.verify()


def test_one_signature_repeated_to_reach_the_threshold_is_refused(world):
    world.publish()

    def bump(root):
        root.version += 1

    world.forge("root.json", bump, [world.signer("root-1")], write_as=["2.root.json"])
    forged = json.loads(world.metadata("2.root.json").read_text())
    forged["signatures"] *= 2
    world.metadata("2.root.json").write_text(json.dumps(forged))
    with pytest.raises(TrustError, match=r"Multiple signatures found for keyid"):
        world.verify()
    # The same signature relabelled as another root key's does not verify as that key.
    relabelled = dict(forged["signatures"][0], keyid=world.public["root-2"].keyid)
    forged["signatures"] = [forged["signatures"][0], relabelled]
    world.metadata("2.root.json").write_text(json.dumps(forged))
    with pytest.raises(TrustError, match=r"root was signed by 1/2 keys"):
        world.verify()


@pytest.mark.parametrize("signed_by", ["old", "new"])
def test_new_root_signed_by_only_the_old_or_only_the_new_keys_is_refused(world, signed_by):
    world.publish()
    new_public = init_keys(world.tmp / "new-keys")
    new_root_keys = [new_public[f"root-{i}"] for i in (1, 2, 3)]
    # Only one side's keys are at hand: the rotation itself refuses to sign...
    only = world.keys if signed_by == "old" else world.tmp / "new-keys"
    with pytest.raises(TrustError, match=r"signing root.* needs 2 of its keys; 0 found"):
        world.repository(only).rotate_root(new_root_keys)
    # ...and a root forged that way is refused by clients.
    signers = [
        world.signer(f"root-{i}", None if signed_by == "old" else world.tmp / "new-keys")
        for i in (1, 2)
    ]

    def rotate(root):
        root.version += 1
        for i in (1, 2, 3):
            root.revoke_key(world.public[f"root-{i}"].keyid, "root")
        for key in new_root_keys:
            root.add_key(key, "root")

    world.forge("root.json", rotate, signers, write_as=["2.root.json"])
    with pytest.raises(TrustError, match=r"root was signed by 0/2 keys"):
        world.verify()


def test_a_proper_rotation_is_followed(world):
    world.publish()
    world.verify()
    new_public = init_keys(world.tmp / "new-keys")
    repository = world.repository(world.tmp / "new-keys", world.keys)
    root = repository.rotate_root([new_public[f"root-{i}"] for i in (1, 2, 3)])
    assert root.version == 2
    assert world.verify().root_version == 2


def test_a_key_revoked_by_rotation_is_refused(world):
    world.publish()
    world.verify()
    stolen = world.signer("timestamp")
    new_timestamp = generate_key(world.tmp / "new-keys", "timestamp")
    root_keys = [world.public[f"root-{i}"] for i in (1, 2, 3)]
    repository = world.repository(world.tmp / "new-keys", world.keys)
    repository.rotate_root(root_keys, role_keys={"timestamp": new_timestamp})
    assert world.verify().root_version == 2

    def bump(timestamp):
        timestamp.version += 1

    world.forge("timestamp.json", bump, [stolen])
    with pytest.raises(TrustError, match=r"timestamp was signed by 0/1 keys"):
        world.verify()


def test_publisher_signing_a_name_outside_its_delegation_is_refused(world):
    publisher_keys = world.tmp / "publisher-keys"
    world.repository().delegate(
        "credit-team", generate_key(publisher_keys, "credit-team"), ["credit-*"]
    )
    both = [publisher_keys, world.keys]
    own = world.publish(role="credit-team", keys=both)
    assert world.verify(own).target.describe() == "credit version 3"
    fraud = variant(world.bundle, name="fraud", version=1)
    with pytest.raises(TrustError, match=r"role credit-team may sign only credit-\*, not fraud-1"):
        world.publish(fraud, role="credit-team", keys=both)
    # The publisher signs it by hand, and the repository's snapshot records the new version.
    fraud_path = fraud.write(world.tmp / "fraud-1.ewb")
    target = TargetFile.from_data("fraud-1.ewb", fraud_path.read_bytes(), ["sha256"])
    target.unrecognized_fields["custom"] = BundleTarget("fraud", 1).to_custom()

    def add_fraud(targets):
        targets.version += 1
        targets.targets[target.path] = target

    version = world.current("credit-team") + 1
    signer = world.signer("credit-team", publisher_keys)
    world.forge(
        "credit-team.json",
        add_fraud,
        [signer],
        write_as=["credit-team.json", f"{version}.credit-team.json"],
    )
    world.repository().publish()
    assert "fraud-1.ewb" in world.load(f"{version}.credit-team.json").signed.targets
    with pytest.raises(TrustError, match=r"fraud-1\.ewb: not signed: no targets metadata trusted"):
        world.verify(fraud_path)


def test_a_leaked_publisher_key_is_replaced_by_delegating_again(world):
    old_keys, new_keys = world.tmp / "publisher-old", world.tmp / "publisher-new"
    world.repository().delegate("credit-team", generate_key(old_keys, "credit-team"), ["credit-*"])
    world.publish(role="credit-team", keys=[old_keys, world.keys])
    world.repository().delegate("credit-team", generate_key(new_keys, "credit-team"), ["credit-*"])
    # What the leaked key signed no longer counts...
    with pytest.raises(TrustError, match=r"credit-team was signed by 0/1 keys"):
        world.verify()
    # ...until the publisher re-signs with the new key.
    assert world.repository(new_keys, world.keys).refresh() == ["credit-team", "snapshot"]
    assert world.verify().target.describe() == "credit version 3"
