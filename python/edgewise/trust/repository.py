"""A TUF repository in a directory: the publishing side of trust.

Layout (served as files; a client needs nothing but these)::

    metadata/root.json, metadata/N.root.json    every root version (clients walk them in order)
    metadata/N.targets.json, N.ROLE.json        targets and delegated targets, by version
    metadata/N.snapshot.json                    the versions of all targets metadata
    metadata/timestamp.json                     the current snapshot, short-lived
    targets/SHA256.NAME-VERSION.ewb             the bundles, named by content

Versioned names ("consistent snapshots") let a client read while a publisher writes: a client
that fetched timestamp N reads exactly the files timestamp N vouches for. The unversioned
``targets.json`` / ``snapshot.json`` copies are the publisher's working state.

Editing goes through python-tuf's `tuf.repository.Repository`: `edit` opens a role, the caller
changes it, and `close` bumps the version, sets the expiry and signs with the role's keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

from securesystemslib.signer import Key
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (
    TOP_LEVEL_ROLE_NAMES,
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer
from tuf.repository import Repository

from ..bundle import MAX_BUNDLE_BYTES, Bundle, read_capped, write_atomic
from ..exceptions import BundleError, TrustError
from .keys import ROOT_KEY_PREFIX, KeyRing
from .operators import set_operator_keys
from .targets import METADATA_DIR, BundleTarget

TARGETS_DIR = "targets"
DEFAULT_ROOT_THRESHOLD = 2
#: How long each role's metadata stays valid after signing. Short for the timestamp so that a
#: client cut off from fresh metadata (a freeze attack) notices within a day.
DEFAULT_EXPIRY = {
    Root.type: timedelta(days=365),
    Targets.type: timedelta(days=90),
    Snapshot.type: timedelta(days=7),
    Timestamp.type: timedelta(days=1),
}
DELEGATED_ROLE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_PRETTY = JSONSerializer(compact=False)


class DirectoryRepository(Repository):
    """The repository at `path`, signing with the keys that `keys` can find."""

    def __init__(
        self,
        path: Path,
        keys: KeyRing,
        expiry: Mapping[str, timedelta] | None = None,
    ) -> None:
        self.path = path
        self.keys = keys
        self.expiry = {**DEFAULT_EXPIRY, **(expiry or {})}

    # Storage: python-tuf's Repository asks for these four.

    def open(self, role: str) -> Metadata:
        path = self._metadata_path(role)
        if not path.exists():
            return Metadata(_empty_signed(role))
        try:
            return Metadata.from_bytes(path.read_bytes())
        except DeserializationError as exc:
            raise TrustError(f"{path}: unreadable {role} metadata: {exc.__cause__}") from exc

    def close(self, role: str, md: Metadata) -> None:
        md.signed.version = self._stored_version(role) + 1
        md.signed.expires = datetime.now(UTC) + self.expiry.get(role, self.expiry[Targets.type])
        md.signatures.clear()
        self._sign(role, md)
        if role == Root.type and md.signed.version > 1:
            self._sign_as_previous_root(md)
        data = md.to_bytes(_PRETTY)
        if role != Timestamp.type:
            write_atomic(self._metadata_path(role, md.signed.version), data)
        write_atomic(self._metadata_path(role), data)

    @property
    def targets_infos(self) -> dict[str, MetaFile]:
        roles = [Targets.type, *self.delegated_roles()]
        return {
            f"{role}.json": MetaFile(self._stored_version(role))
            for role in roles
            if self._metadata_path(role).exists()
        }

    @property
    def snapshot_info(self) -> MetaFile:
        data = self._metadata_path(Snapshot.type).read_bytes()
        return MetaFile.from_data(self.snapshot().version, data, ["sha256"])

    # Operations.

    def init(
        self,
        *,
        root_threshold: int = DEFAULT_ROOT_THRESHOLD,
        operator_keys: Iterable[Key] = (),
    ) -> Root:
        """Create version 1 of every role from the keys in the key ring."""
        if self._metadata_path(Root.type).exists():
            raise TrustError(f"{self.path}: already a repository")
        public = self.keys.public_keys()
        root_keys = [key for name, key in public.items() if name.startswith(ROOT_KEY_PREFIX)]
        if len(root_keys) < root_threshold:
            raise TrustError(
                f"{self.keys.describe()}: {len(root_keys)} root keys, fewer than the threshold "
                f"of {root_threshold} (edgewise keys init makes them)"
            )
        with self.edit_root() as root:
            _set_role_keys(root, Root.type, root_keys, root_threshold)
            for role in (Targets.type, Snapshot.type, Timestamp.type):
                _set_role_keys(root, role, [self.keys.public_key(role)], 1)
            set_operator_keys(root, operator_keys)
        with self.edit_targets():
            pass
        self.publish()
        return self.root()

    def add_bundle(
        self, bundle_path: Path, *, role: str = Targets.type, hardware: str | None = None
    ) -> BundleTarget:
        """Publish the bundle at `bundle_path` as a target signed by `role`."""
        self._require_repository()
        data = read_capped(bundle_path, MAX_BUNDLE_BYTES)
        try:
            bundle = Bundle.from_bytes(data, source=str(bundle_path))
        except BundleError as exc:
            raise TrustError(f"refusing to sign a broken bundle: {exc}") from exc
        described = BundleTarget(bundle.name, bundle.version, hardware)
        self._require_may_sign(role, described.path)
        target = TargetFile.from_data(described.path, data, ["sha256"])
        target.unrecognized_fields["custom"] = described.to_custom()
        published = self.targets(role).targets.get(described.path)
        if published is not None and published.hashes != target.hashes:
            raise TrustError(
                f"{described.path} is already published with other contents; "
                "compile it with a new version"
            )
        write_atomic(self.path / TARGETS_DIR / f"{target.hashes['sha256']}.{target.path}", data)
        with self.edit_targets(role) as targets:
            targets.targets[target.path] = target
        self.publish()
        return described

    def delegate(self, role: str, key: Key, paths: Iterable[str]) -> DelegatedRole:
        """Let `key` sign the bundle targets whose paths match `paths`, and nothing else."""
        self._require_repository()
        if role in TOP_LEVEL_ROLE_NAMES or not DELEGATED_ROLE_NAME.fullmatch(role):
            raise TrustError(
                f"{role!r}: a delegated role is named with lowercase letters, digits and "
                "dashes, and is none of root, targets, snapshot, timestamp"
            )
        patterns = list(paths)
        if not patterns:
            raise TrustError(f"delegation {role}: give at least one path pattern")
        # Terminating: a target matching these paths is looked up here and nowhere further, so
        # another role cannot answer for the publisher's names.
        delegated = DelegatedRole(role, [key.keyid], 1, terminating=True, paths=patterns)
        with self.edit_targets() as targets:
            if targets.delegations is None or targets.delegations.roles is None:
                targets.delegations = Delegations(keys={}, roles={})
            roles = cast(dict[str, DelegatedRole], targets.delegations.roles)
            previous = roles.get(role)
            if previous is not None:
                for keyid in previous.keyids:
                    targets.revoke_key(keyid, role)
            roles[role] = delegated
            targets.add_key(key, role)
        self.publish()
        return delegated

    def refresh(self) -> list[str]:
        """Re-sign what would otherwise expire; returns the roles renewed besides the timestamp.

        Targets roles whose keys are at hand are renewed once less than half their lifetime is
        left, or when their signatures no longer count (a delegation given a new key); so is
        the snapshot. The timestamp is re-signed every time.
        """
        self._require_repository()
        renewed = [
            role
            for role in [Targets.type, *self.delegated_roles()]
            if (self._expiring(role) or not self._signed_under_current_keys(role))
            and self._can_sign(role)
        ]
        for role in renewed:
            with self.edit_targets(role):
                pass
        if renewed or self._expiring(Snapshot.type):
            self.publish()
            return [*renewed, Snapshot.type]
        self._stamp()
        return renewed

    def rotate_root(
        self,
        new_root_keys: Sequence[Key],
        *,
        root_threshold: int = DEFAULT_ROOT_THRESHOLD,
        role_keys: Mapping[str, Key] | None = None,
        operator_keys: Iterable[Key] | None = None,
    ) -> Root:
        """A new root with `new_root_keys` (and any replaced role keys), signed by a threshold
        of the old root keys and of the new ones; then every role is re-signed under it."""
        self._require_repository()
        if len(new_root_keys) < root_threshold:
            raise TrustError(
                f"{len(new_root_keys)} new root keys, fewer than the threshold {root_threshold}"
            )
        with self.edit_root() as root:
            _set_role_keys(root, Root.type, new_root_keys, root_threshold)
            for role, key in (role_keys or {}).items():
                _set_role_keys(root, role, [key], 1)
            if operator_keys is not None:
                set_operator_keys(root, operator_keys)
        # Metadata signed by replaced keys no longer verifies: sign new versions of all of it.
        with self.edit_targets():
            pass
        self.publish()
        return self.root()

    def publish(self) -> None:
        """A snapshot of every targets role's current version, then a timestamp of it."""
        with self.edit_snapshot() as snapshot:
            snapshot.meta.update(self.targets_infos)
        self._stamp()

    def delegated_roles(self) -> dict[str, DelegatedRole]:
        delegations = self.targets().delegations
        if delegations is None or delegations.roles is None:
            return {}
        return dict(delegations.roles)

    # Helpers.

    def _stamp(self) -> None:
        """A new timestamp (new version, new expiry) of the current snapshot."""
        with self.edit_timestamp() as timestamp:
            timestamp.snapshot_meta = self.snapshot_info

    def _expiring(self, role: str) -> bool:
        lifetime = self.expiry.get(role, self.expiry[Targets.type])
        return self.open(role).signed.expires - datetime.now(UTC) < lifetime / 2

    def _signed_under_current_keys(self, role: str) -> bool:
        md = self.open(role)
        delegator: Root | Targets = self.root() if role == Targets.type else self.targets()
        try:
            delegator.verify_delegate(role, md.signed_bytes, md.signatures)
        except UnsignedMetadataError:
            return False
        return True

    def _can_sign(self, role: str) -> bool:
        definition = self._role_definition(role)
        return len(self.keys.signers_for(definition.keyids)) >= definition.threshold

    def _metadata_path(self, role: str, version: int | None = None) -> Path:
        name = f"{role}.json" if version is None else f"{version}.{role}.json"
        return self.path / METADATA_DIR / name

    def _stored_version(self, role: str) -> int:
        if not self._metadata_path(role).exists():
            return 0
        return int(self.open(role).signed.version)

    def _require_repository(self) -> None:
        if not self._metadata_path(Root.type).exists():
            raise TrustError(f"{self.path}: not an edgewise repository (edgewise repo init)")

    def _require_may_sign(self, role: str, path: str) -> None:
        if role == Targets.type:
            return
        delegated = self.delegated_roles().get(role)
        if delegated is None:
            raise TrustError(f"{self.path}: no delegated role {role!r} (edgewise repo delegate)")
        if not delegated.is_delegated_path(path):
            raise TrustError(
                f"role {role} may sign only {', '.join(delegated.paths or [])}, not {path}"
            )

    def _role_definition(self, role: str) -> Role:
        if role in TOP_LEVEL_ROLE_NAMES:
            return self.root().roles[role]
        delegated = self.delegated_roles().get(role)
        if delegated is None:
            raise TrustError(f"{self.path}: no delegated role {role!r}")
        return delegated

    def _sign(self, role: str, md: Metadata) -> None:
        definition = (
            md.signed.roles[Root.type] if role == Root.type else self._role_definition(role)
        )
        self._sign_with_threshold(role, md, definition)

    def _sign_as_previous_root(self, md: Metadata) -> None:
        """A new root must also carry a threshold of the previous root's signatures."""
        previous = self.root()
        what = f"root (as version {previous.version})"
        self._sign_with_threshold(what, md, previous.roles[Root.type])

    def _sign_with_threshold(self, what: str, md: Metadata, definition: Role) -> None:
        signers = self.keys.signers_for(definition.keyids)
        if len(signers) < definition.threshold:
            raise TrustError(
                f"signing {what} needs {definition.threshold} of its keys; "
                f"{len(signers)} found in {self.keys.describe()}"
            )
        for signer in signers:
            md.sign(signer, append=True)


def _empty_signed(role: str) -> Root | Targets | Snapshot | Timestamp:
    """A role's content before its first version (`close` numbers and signs it)."""
    if role == Root.type:
        return Root(consistent_snapshot=True)
    if role == Snapshot.type:
        return Snapshot()
    if role == Timestamp.type:
        return Timestamp()
    return Targets()


def _set_role_keys(root: Root, role: str, keys: Iterable[Key], threshold: int) -> None:
    """Make `keys` the keys of `role`; keys no role uses any more leave the root."""
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    for key in keys:
        root.add_key(key, role)
    root.roles[role].threshold = threshold
