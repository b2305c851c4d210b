"""The bundle format: contents, atomic writes and defensive reading."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow.parquet as pq
import pytest

from edgewise import Bundle, BundleError, Profile
from edgewise.bundle import FORMAT_VERSION, MEMBER_LIMITS
from edgewise.datasets import FEATURES


def rebuild(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def members_of(data: bytes) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(info, tar.extractfile(info).read()) for info in tar]  # type: ignore[union-attr]


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_manifest_describes_the_model(bundle: Bundle):
    manifest = bundle.manifest
    assert manifest["format_version"] == FORMAT_VERSION
    assert (manifest["name"], manifest["version"], manifest["task"]) == (
        "credit",
        3,
        "classification",
    )
    assert manifest["outputs"]["classes"] == [0, 1]
    assert {c["name"] for c in manifest["schema"]} >= {"income", "region"}
    income = next(c for c in manifest["schema"] if c["name"] == "income")
    assert income["kind"] == "float" and income["nullable"] and income["accepts_missing"]
    region = next(c for c in manifest["schema"] if c["name"] == "region")
    assert region["categories"][:2] == ["central", "coast"] and region["accepts_unknown"]
    lineage = manifest["lineage"]
    assert lineage["estimator"] == "LogisticRegression"
    assert lineage["metrics"]["accuracy"] > 0.5 and "roc_auc" in lineage["metrics"]
    assert lineage["libraries"]["scikit-learn"]
    assert manifest["fidelity"]["onnxruntime"]["rows"] == 3000


def test_health_sample_holds_inputs_and_expected_scores(bundle: Bundle):
    health = pq.read_table(io.BytesIO(bundle.health))
    assert "region" in health.column_names and "expected_proba_1" in health.column_names
    assert health.num_rows == 256


def test_round_trip_is_byte_identical(bundle: Bundle, tmp_path):
    path = bundle.write(tmp_path / "copy.ewb")
    assert Bundle.read(path) == bundle
    assert path.read_bytes() == bundle.to_bytes()
    assert not list(tmp_path.glob(".*.tmp"))
    assert path.stat().st_mode & 0o777 == 0o644


def test_tampered_model_is_rejected(bundle: Bundle):
    members = members_of(bundle.to_bytes())
    members = [regular(i.name, d + b"x" if i.name == "model.onnx" else d) for i, d in members]
    with pytest.raises(BundleError, match=r"model\.onnx does not match the hash in the manifest"):
        Bundle.from_bytes(rebuild(members))


def test_unknown_format_version_is_rejected(bundle: Bundle):
    manifest = {**bundle.manifest, "format_version": FORMAT_VERSION + 1}
    members = [
        regular(i.name, json.dumps(manifest).encode() if i.name == "manifest.json" else d)
        for i, d in members_of(bundle.to_bytes())
    ]
    with pytest.raises(BundleError, match=r"format version 2 is not supported"):
        Bundle.from_bytes(rebuild(members))


def test_unexpected_members_and_links_are_rejected(bundle: Bundle):
    members = members_of(bundle.to_bytes())
    with pytest.raises(BundleError, match=r"unexpected member '\.\./evil'"):
        Bundle.from_bytes(rebuild([*members, regular("../evil", b"x")]))
    link = tarfile.TarInfo("health.parquet")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    others = [m for m in members if m[0].name != "health.parquet"]
    with pytest.raises(BundleError, match=r"'health\.parquet' is not a regular file"):
        Bundle.from_bytes(rebuild([*others, (link, b"")]))


def test_oversized_member_is_rejected_before_reading(bundle: Bundle, monkeypatch):
    monkeypatch.setitem(MEMBER_LIMITS, "model.onnx", 10)
    with pytest.raises(BundleError, match="over the limit of 10"):
        Bundle.from_bytes(bundle.to_bytes())


def test_not_a_bundle(tmp_path):
    path = tmp_path / "x.ewb"
    path.write_bytes(b"hello")
    with pytest.raises(BundleError, match=r"x\.ewb: not a bundle"):
        Bundle.read(path)
    with pytest.raises(BundleError, match=r"missing\.ewb: cannot read bundle"):
        Bundle.read(tmp_path / "missing.ewb")


def test_reference_profile_is_the_training_data_profile_and_covered_by_the_manifest(
    bundle: Bundle, credit_train
):
    reference = Profile.from_bytes(bundle.reference)
    assert reference.rows == len(credit_train)
    assert set(reference.column_names) == set(FEATURES)
    assert bundle.manifest["files"]["reference.profile"]["length"] == len(bundle.reference)
    members = members_of(bundle.to_bytes())
    tampered = [
        regular(info.name, data[:-1] + b"\x00")
        if info.name == "reference.profile"
        else (info, data)
        for info, data in members
    ]
    with pytest.raises(BundleError, match=r"reference\.profile does not match the hash"):
        Bundle.from_bytes(rebuild(tampered))
    dropped = [(info, data) for info, data in members if info.name != "reference.profile"]
    with pytest.raises(
        BundleError, match=r"the manifest lists reference\.profile, which is missing"
    ):
        Bundle.from_bytes(rebuild(dropped))
    # A bundle made without a reference profile is complete without it.
    bare = Bundle.create(
        {k: v for k, v in bundle.manifest.items() if k != "files"}, bundle.model, bundle.health
    )
    assert Bundle.from_bytes(bare.to_bytes()).reference is None
