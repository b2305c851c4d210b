"""Attacks on the bundle bytes and on which bundle a client runs; each must be refused."""

from __future__ import annotations

import pytest
from trust_world import variant

from edgewise import Bundle, TrustError
from edgewise.trust import verify_bundle


def test_a_published_bundle_verifies(world):
    world.publish()
    verified = world.verify(name="credit")
    assert verified.bundle == world.bundle
    assert (verified.target.name, verified.target.version, verified.root_version) == (
        "credit",
        3,
        1,
    )


def test_unsigned_bundle_is_refused(world):
    with pytest.raises(TrustError, match=r"credit-3\.ewb: not signed: no targets metadata trusted"):
        world.verify()


def test_tampered_bundle_bytes_are_refused(world):
    world.publish()
    data = bytearray(world.bundle_path.read_bytes())
    data[-1] ^= 1  # the last byte of the tar's zero padding: the bundle still reads fine
    world.bundle_path.write_bytes(bytes(data))
    assert Bundle.read(world.bundle_path) == world.bundle
    with pytest.raises(TrustError, match=r"not the bytes signed as credit-3\.ewb: .*hash"):
        world.verify()


def test_tampered_manifest_is_refused(world):
    world.publish()
    data = world.bundle_path.read_bytes()
    # Same length, same member hashes: the bundle's own checks cannot see this change.
    forged = data.replace(b'"LogisticRegression"', b'"LinearRegressionXX"')
    assert forged != data and Bundle.from_bytes(forged).manifest["lineage"]["estimator"] == (
        "LinearRegressionXX"
    )
    world.bundle_path.write_bytes(forged)
    with pytest.raises(TrustError, match=r"not the bytes signed as credit-3\.ewb"):
        world.verify()


def test_bundle_longer_than_its_signed_length_is_refused(world):
    world.publish()
    signed_length = world.bundle_path.stat().st_size
    with world.bundle_path.open("ab") as handle:
        handle.write(b"\0" * (8 << 20))  # tar readers ignore trailing zeros; length does not
    with pytest.raises(TrustError, match=rf"longer than the {signed_length} bytes signed for it"):
        world.verify()


def test_older_version_of_the_same_name_is_refused(world):
    old = world.publish()
    new = world.publish(variant(world.bundle, version=4))
    assert world.verify(new, name="credit").target.version == 4
    with pytest.raises(TrustError, match=r"credit version 3 is older than version 4, which this"):
        world.verify(old, name="credit")


def test_valid_bundle_for_another_name_is_refused(world):
    fraud = world.publish(variant(world.bundle, name="fraud", version=1))
    assert world.verify(fraud).target.name == "fraud"  # genuine, just not this client's
    with pytest.raises(
        TrustError, match=r"signed as fraud version 1, but this client runs credit \(wrong software"
    ):
        world.verify(fraud, name="credit")


def test_valid_bundle_for_another_hardware_class_is_refused(world):
    path = world.publish(hardware="arm64-npu")
    assert world.verify(path, hardware="arm64-npu").target.hardware == "arm64-npu"
    with pytest.raises(
        TrustError, match=r"for hardware arm64-npu, but this client is hardware x86-64 \(wrong hard"
    ):
        world.verify(path, hardware="x86-64")


def test_a_renamed_bundle_is_found_by_its_manifest(world):
    world.publish()
    renamed = world.bundle_path.rename(world.tmp / "model.ewb")
    verified = verify_bundle(
        str(renamed), repo=str(world.repo), root=str(world.tmp / "root.json"), state_dir=world.state
    )
    assert verified.target.path == "credit-3.ewb"
