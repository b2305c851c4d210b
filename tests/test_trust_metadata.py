"""Attacks on the metadata a client is shown: old versions, mixed versions, stale (frozen)
views, oversized files, and a fast-forward that key rotation must recover from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from trust_world import World, variant

from edgewise import TrustError
from edgewise.trust.keys import generate_key


def bump(signed) -> None:
    signed.version += 1


def test_rolled_back_timestamp_is_refused(world):
    world.publish()
    old_timestamp = world.metadata("timestamp.json").read_bytes()
    world.repository().refresh()
    world.verify()  # the client has now seen the newer timestamp
    world.metadata("timestamp.json").write_bytes(old_timestamp)
    with pytest.raises(TrustError, match=r"rollback refused: New timestamp version \d+ must be >="):
        world.verify()


def test_rolled_back_snapshot_is_refused(world):
    world.publish()
    old_snapshot = world.current("snapshot")
    world.repository().publish()
    world.verify()
    # A stolen timestamp key signs a newer timestamp that points at the older snapshot.
    stolen = world.signer("timestamp")

    def point_back(timestamp):
        bump(timestamp)
        timestamp.snapshot_meta.version = old_snapshot
        timestamp.snapshot_meta.length = timestamp.snapshot_meta.hashes = None

    world.forge("timestamp.json", point_back, [stolen])
    with pytest.raises(TrustError, match=r"rollback refused: New snapshot version must be >= \d+"):
        world.verify()


def test_rolled_back_targets_are_refused(world):
    world.publish()
    old_targets = world.current("targets")
    world.publish(variant(world.bundle, version=4))
    world.verify()
    # Stolen snapshot and timestamp keys list the older targets version.
    snapshot_version = world.current("snapshot") + 1

    def point_back(snapshot):
        bump(snapshot)
        snapshot.meta["targets.json"].version = old_targets

    world.forge(
        "snapshot.json",
        point_back,
        [world.signer("snapshot")],
        write_as=["snapshot.json", f"{snapshot_version}.snapshot.json"],
    )
    world.repository().refresh()
    with pytest.raises(TrustError, match=r"rollback refused: Expected targets\.json version"):
        world.verify()


def test_mix_and_match_targets_of_another_snapshot_are_refused(world):
    world.publish()
    old = world.current("targets")
    world.repository().refresh()
    newer = world.publish(variant(world.bundle, version=4))
    current = world.current("targets")
    # The current snapshot and timestamp, served with an older (validly signed) targets file.
    world.metadata(f"{current}.targets.json").write_bytes(
        world.metadata(f"{old}.targets.json").read_bytes()
    )
    with pytest.raises(
        TrustError, match=rf"rollback refused: Expected targets v{current}, got v{old}"
    ):
        world.verify(newer)


def test_oversized_metadata_is_refused(world):
    world.publish()
    path = world.metadata("timestamp.json")
    path.write_bytes(path.read_bytes() + b" " * (1 << 20))  # still valid JSON, just endless
    with pytest.raises(TrustError, match=r"metadata larger than allowed .*16384"):
        world.verify()


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "root"])
def test_expired_metadata_is_refused(tmp_path, bundle, role):
    # A repository that signs everything of `role` already expired: what a client sees when
    # an attacker keeps serving it a view from before the expiry.
    frozen = World(tmp_path, bundle, expiry={role: timedelta(seconds=-1)})
    frozen.init()
    frozen.publish()
    expected = {
        "root": r"Final root\.json is expired",
        "timestamp": r"timestamp\.json is expired",
        "snapshot": r"snapshot\.json is expired",
        "targets": r"New targets is expired",
    }[role]
    with pytest.raises(TrustError, match=rf"expired: {expected} \(the repository stopped"):
        frozen.verify()


def test_recovery_from_a_fast_forward_attack_by_key_rotation(world):
    world.publish()
    world.verify()
    # An attacker with the timestamp key pushes the client's timestamp version far ahead...
    stolen = world.signer("timestamp")

    def far_ahead(timestamp):
        timestamp.version = 10_000

    legitimate = world.metadata("timestamp.json").read_bytes()
    world.forge("timestamp.json", far_ahead, [stolen])
    world.verify()
    # ...so the repository's own next timestamp now looks like a rollback.
    world.metadata("timestamp.json").write_bytes(legitimate)
    world.repository().refresh()
    with pytest.raises(
        TrustError, match=r"rollback refused: New timestamp version \d+ must be >= 10000"
    ):
        world.verify()
    # Rotating the timestamp key makes the client drop the fast-forwarded timestamp.
    new_key = generate_key(world.tmp / "new-keys", "timestamp")
    repository = world.repository(world.tmp / "new-keys", world.keys)
    repository.rotate_root(
        [world.public[f"root-{i}"] for i in (1, 2, 3)], role_keys={"timestamp": new_key}
    )
    assert world.current("timestamp") < 10_000
    assert world.verify().root_version == 2


def test_refresh_renews_what_would_expire_before_it_does(tmp_path, bundle):
    short = {"targets": timedelta(hours=1), "snapshot": timedelta(hours=1)}
    aging = World(tmp_path, bundle, expiry=short)
    aging.init()
    aging.publish()
    aging.expiry = None  # the usual lifetimes: one hour left is less than half of them
    assert aging.repository().refresh() == ["targets", "snapshot"]
    assert aging.repository().refresh() == []
    snapshot = aging.load("snapshot.json").signed
    assert snapshot.expires - datetime.now(UTC) > timedelta(days=6)
    assert aging.verify().target.version == 3


def test_the_directory_fetcher_serves_only_its_directory(world):
    from tuf.api.exceptions import DownloadError, DownloadHTTPError

    from edgewise.trust.fetchers import DirectoryFetcher

    (world.tmp / "secret.txt").write_text("not for clients")
    (world.repo / "metadata" / "escape.json").symlink_to(world.tmp / "secret.txt")
    fetcher = DirectoryFetcher(world.repo / "metadata")
    base = fetcher.url_for(".")
    assert fetcher.download_bytes(base + "1.root.json", 1 << 20).startswith(b"{")
    for url in (base + "../../secret.txt", base + "escape.json", "https://example.com/x"):
        with pytest.raises(DownloadError, match=r"outside the repository|file:// URLs only"):
            fetcher.download_bytes(url, 1 << 20)
    with pytest.raises(DownloadHTTPError, match="not found"):
        fetcher.download_bytes(base + "99.root.json", 1 << 20)
