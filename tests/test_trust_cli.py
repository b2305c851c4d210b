"""The trust commands end to end: keys, repository, verification and trusted scoring."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from edgewise.cli import main
from edgewise.datasets import credit_frame


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """A CliRunner in `tmp_path`, with the client's trusted state kept there too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEWISE_TRUST_STATE", str(tmp_path / "state"))
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, list(args))
        assert result.exit_code == code, result.output
        return result.output

    return run


@pytest.fixture
def signed(cli, tmp_path, bundle_path):
    """keys init -> repo init -> repo add, with the client's root pinned outside the repo."""
    bundle = shutil.copy(bundle_path, tmp_path / "credit-3.ewb")
    assert "wrote 7 keys to keys (private .key files 0600, not encrypted)" in cli(
        "keys", "init", "keys"
    )
    out = cli("repo", "init", "repo", "--keys", "keys")
    assert "created repo: root version 1 (2 of 3 root keys)" in out
    assert "pin on every client: repo/metadata/1.root.json" in out
    shutil.copy(tmp_path / "repo/metadata/1.root.json", tmp_path / "root.json")
    out = cli("repo", "add", "repo", str(bundle), "--keys", "keys")
    assert out.startswith("signed credit-3.ewb (credit version 3) as a target of targets: ")
    return bundle


def test_compile_sign_verify_and_score_end_to_end(cli, tmp_path, signed):
    out = cli("bundle", "verify", str(signed), "--repo", "repo", "--root", "root.json")
    assert out == (
        f"{signed}: trusted: signed as credit version 3, vouched for by root version 1 and the "
        "current timestamp, snapshot and targets\n"
    )
    credit_frame(500, seed=4).to_parquet(tmp_path / "in.parquet", index=False)
    out = cli(
        "score",
        str(signed),
        "in.parquet",
        "-o",
        "scores",
        "--trust",
        "repo",
        "--root",
        "root.json",
        "--name",
        "credit",
        "--json",
    )
    assert "trusted: signed as credit version 3" in out
    summary = json.loads(out[out.index("{") :])
    assert summary["rows_scored"] == 500


def test_score_refuses_what_does_not_verify(cli, tmp_path, signed, bundle_path):
    credit_frame(10, seed=4).to_parquet(tmp_path / "in.parquet", index=False)
    out = cli("score", str(signed), "in.parquet", "-o", "s1", code=2)
    assert "credit-3.ewb is not verified: give --trust DIR --root root.json, or" in out
    with signed.open("ab") as handle:
        handle.write(b"\0" * 512)
    out = cli(
        "score",
        str(signed),
        "in.parquet",
        "-o",
        "s2",
        "--trust",
        "repo",
        "--root",
        "root.json",
        code=1,
    )
    assert (
        out
        == f"Error: {signed}: longer than the {signed.stat().st_size - 512} bytes signed for it\n"
    )
    assert not (tmp_path / "s2").exists()
    out = cli("score", str(bundle_path), "in.parquet", "-o", "s3", "--insecure-unsigned")
    assert "scored 10 of 10 rows" in out


def test_verify_fails_with_the_reason(cli, tmp_path, signed, bundle):
    from trust_world import variant

    unsigned = variant(bundle, version=5).write(tmp_path / "credit-5.ewb")
    out = cli("bundle", "verify", str(unsigned), "--repo", "repo", "--root", "root.json", code=1)
    assert out == (
        "Error: credit-5.ewb: not signed: no targets metadata trusted for this name lists it "
        "(in repo)\n"
    )
    out = cli(
        "bundle",
        "verify",
        str(signed),
        "--repo",
        "repo",
        "--root",
        "root.json",
        "--name",
        "fraud",
        code=1,
    )
    assert "(wrong software)" in out


def test_inspect_shows_the_manifest_and_trust_in_words(cli, signed):
    out = cli("bundle", "inspect", str(signed))
    assert "bundle:   credit version 3 (classification)" in out
    assert "model:    LogisticRegression" in out
    assert "trust:    not checked (give --repo DIR --root root.json)" in out
    out = cli("bundle", "inspect", str(signed), "--repo", "repo", "--root", "root.json")
    assert "trust:    trusted: signed as credit version 3" in out
    (signed.parent / "repo/metadata/timestamp.json").write_text("{}")
    out = cli("bundle", "inspect", str(signed), "--repo", "repo", "--root", "root.json")
    assert "trust:    NOT TRUSTED: repo: invalid metadata" in out


def test_delegate_rotate_and_refresh(cli, tmp_path, signed, bundle):
    from trust_world import variant

    cli("keys", "add", "publisher", "credit-team")
    out = cli(
        "repo",
        "delegate",
        "repo",
        "credit-team",
        "--key",
        "publisher/credit-team.pub",
        "--paths",
        "credit-*",
        "--keys",
        "keys",
    )
    assert out.startswith("role credit-team (") and out.endswith(") may sign credit-*\n")
    as_publisher = ("--role", "credit-team", "--keys", "publisher", "--keys", "keys")
    newer = variant(bundle, version=4).write(tmp_path / "credit-4.ewb")
    cli("repo", "add", "repo", str(newer), *as_publisher)
    fraud = variant(bundle, name="fraud", version=1).write(tmp_path / "fraud-1.ewb")
    out = cli("repo", "add", "repo", str(fraud), *as_publisher, code=1)
    assert out == "Error: role credit-team may sign only credit-*, not fraud-1.ewb\n"

    cli("keys", "init", "new-keys")
    out = cli("repo", "rotate-root", "repo", "--keys", "keys", "--new-keys", "new-keys")
    assert out.startswith(
        "root version 2: new keys for root, targets, snapshot, timestamp, operator\n"
    )
    assert "revoked: " in out and "none" not in out
    assert cli("repo", "refresh", "repo", "--keys", "new-keys").startswith("timestamp version ")
    out = cli("bundle", "verify", str(newer), "--repo", "repo", "--root", "root.json")
    assert "signed as credit version 4, vouched for by root version 2" in out
    # Only the timestamp key: the root keys stay.
    cli("keys", "add", "online", "timestamp")
    out = cli("repo", "rotate-root", "repo", "--keys", "new-keys", "--new-keys", "online")
    assert out.startswith("root version 3: new keys for timestamp\nrevoked: ")
    cli("bundle", "verify", str(newer), "--repo", "repo", "--root", "root.json")
    # The old keys alone can no longer publish.
    out = cli("repo", "refresh", "repo", "--keys", "keys", code=1)
    assert out.startswith("Error: signing timestamp needs 1 of its keys; 0 found in keys")
