"""Verification: python-tuf's client workflow (`Updater`) decides whether a bundle is trusted.

A client pins one root.json. Each run it walks any newer roots, then timestamp, snapshot and
targets (and delegated targets), checking signatures, thresholds, versions, expiry and sizes the
way the TUF specification says; what it accepted is kept in the client's state directory, so
rollback and freeze protection hold across runs. Then the bundle's exact bytes must match the
length and hashes signed for ``NAME-VERSION.ewb``, its signed name and hardware class must be
what the client runs, and its version must not be older than one it accepted before.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile
from tuf.api.serialization import DeserializationError
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from ..bundle import Bundle, read_capped, read_manifest
from ..exceptions import TrustError
from .accepted import AcceptedVersions
from .fetchers import DirectoryFetcher
from .targets import METADATA_DIR, BundleTarget, target_path

#: Caps on metadata sizes, enforced while bytes arrive: a repository (or whoever stands in for
#: it) cannot make a client read endless metadata. Ample for thousands of bundles.
METADATA_LIMITS = UpdaterConfig(
    root_max_length=256 << 10,
    timestamp_max_length=16 << 10,
    snapshot_max_length=1 << 20,
    targets_max_length=4 << 20,
)
STATE_ENV = "EDGEWISE_TRUST_STATE"


@dataclass(frozen=True)
class VerifiedBundle:
    bundle: Bundle
    target: BundleTarget
    root_version: int


def default_state_dir(root: bytes) -> Path:
    """Where a client keeps what it trusts for this pinned root, unless told otherwise."""
    base = os.environ.get(STATE_ENV) or os.path.join(
        os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state", "edgewise", "trust"
    )
    return Path(base) / hashlib.sha256(root).hexdigest()[:16]


#: What each kind of python-tuf refusal means, in words; the first match applies.
EXPLANATIONS: tuple[tuple[type[Exception], str], ...] = (
    (tuf_errors.DownloadLengthMismatchError, "metadata larger than allowed ({})"),
    (tuf_errors.DownloadHTTPError, "missing from the repository ({})"),
    (
        tuf_errors.ExpiredMetadataError,
        "expired: {} (the repository stopped signing, or a frozen copy is replayed)",
    ),
    (tuf_errors.BadVersionNumberError, "rollback refused: {}"),
    (tuf_errors.UnsignedMetadataError, "not signed by enough trusted keys: {}"),
    (
        tuf_errors.LengthOrHashMismatchError,
        "metadata does not match its signed length or hashes: {}",
    ),
)


def explain(exc: Exception) -> str:
    """Say in words why python-tuf refused metadata."""
    for kind, template in EXPLANATIONS:
        if isinstance(exc, kind):
            return template.format(exc)
    if isinstance(exc, DeserializationError) and exc.__cause__ is not None:
        # python-tuf's own message is only "Failed to deserialize"; the cause says what failed.
        return f"invalid metadata: {exc.__cause__}"
    return f"{type(exc).__name__}: {exc}"


class TrustClient:
    """One client's verified view of a repository, read through `fetcher`."""

    def __init__(
        self,
        root: bytes,
        state_dir: Path,
        fetcher: FetcherInterface,
        metadata_url: str,
        source: str,
    ) -> None:
        self.state_dir = state_dir
        self.source = source
        state_dir.mkdir(parents=True, exist_ok=True)
        self.accepted = AcceptedVersions(state_dir)
        try:
            self._updater = Updater(
                str(state_dir),
                metadata_url,
                fetcher=fetcher,
                config=METADATA_LIMITS,
                bootstrap=root,
            )
        except (tuf_errors.RepositoryError, ValueError) as exc:
            raise TrustError(f"pinned root: not valid root metadata ({explain(exc)})") from exc
        self._refreshed = False

    @classmethod
    def for_directory(cls, repo: Path, root: Path, state_dir: Path | None = None) -> TrustClient:
        try:
            pinned = root.read_bytes()
        except OSError as exc:
            raise TrustError(f"{root}: cannot read the pinned root: {exc.strerror}") from exc
        if not (repo / METADATA_DIR).is_dir():
            raise TrustError(f"{repo}: not a repository (no {METADATA_DIR}/ directory)")
        fetcher = DirectoryFetcher(repo)
        return cls(
            pinned,
            state_dir or default_state_dir(pinned),
            fetcher,
            fetcher.url_for(METADATA_DIR),
            source=str(repo),
        )

    def refresh(self) -> None:
        """Bring the trusted metadata up to date (once per client)."""
        if self._refreshed:
            return
        try:
            self._updater.refresh()
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise TrustError(f"{self.source}: {explain(exc)}") from exc
        self._refreshed = True

    def trusted_root(self) -> Root:
        """The newest root the chain from the pinned root vouches for."""
        self.refresh()
        # The Updater keeps root.json in the state directory pointing at the root it verified.
        return Metadata[Root].from_file(str(self.state_dir / "root.json")).signed

    def lookup(self, name: str, version: int) -> tuple[TargetFile, BundleTarget]:
        path = target_path(name, version)
        self.refresh()
        try:
            info = self._updater.get_targetinfo(path)
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise TrustError(f"{self.source}: {explain(exc)}") from exc
        if info is None:
            raise TrustError(
                f"{path}: not signed: no targets metadata trusted for this name lists it "
                f"(in {self.source})"
            )
        return info, BundleTarget.from_target_file(info)

    def verify_file(
        self,
        path: Path,
        *,
        name: str | None = None,
        hardware: str | None = None,
        record: bool = True,
    ) -> VerifiedBundle:
        """The bundle at `path`, if the whole chain vouches for its exact bytes.

        `name` and `hardware` are what this client runs; a bundle signed for another name or
        another hardware class is refused even though its signatures are good. With `record`,
        its version becomes the oldest this client accepts for that name from now on.
        """
        manifest = read_manifest(path)  # only to learn which target to look up
        name_in_manifest, version = manifest["name"], manifest["version"]
        if not isinstance(name_in_manifest, str) or not isinstance(version, int):
            raise TrustError(f"{path}: the manifest's name or version is malformed")
        info, _ = self.lookup(name_in_manifest, version)
        data = read_capped(
            path, info.length, limit_name=f"the {info.length} bytes signed for it", error=TrustError
        )
        target = (name_in_manifest, version)
        return self.verify_bytes(
            data, target, str(path), name=name, hardware=hardware, record=record
        )

    def verify_bytes(
        self,
        data: bytes,
        target: tuple[str, int],
        source: str,
        *,
        name: str | None = None,
        hardware: str | None = None,
        record: bool = True,
        accepted: AcceptedVersions | None = None,
    ) -> VerifiedBundle:
        """The bundle in `data`, if it is exactly the bytes signed for `target` (name, version);
        `accepted` (default: this client's record) holds the versions accepted before."""
        info, signed = self.lookup(*target)
        self._check(data, info, signed, source, name=name, hardware=hardware)
        bundle = Bundle.from_bytes(data, source)
        if (bundle.name, bundle.version) != (signed.name, signed.version):
            raise TrustError(f"{source}: its manifest disagrees with the signed {info.path}")
        accepted = self.accepted if accepted is None else accepted
        accepted.check(signed.name, signed.version)
        if record:
            accepted.record(signed.name, signed.version)
        return VerifiedBundle(bundle, signed, self.trusted_root().version)

    @staticmethod
    def _check(
        data: bytes,
        info: TargetFile,
        signed: BundleTarget,
        source: str,
        *,
        name: str | None,
        hardware: str | None,
    ) -> None:
        try:
            info.verify_length_and_hashes(data)
        except tuf_errors.LengthOrHashMismatchError as exc:
            raise TrustError(f"{source}: not the bytes signed as {info.path}: {exc}") from exc
        if name is not None and signed.name != name:
            raise TrustError(
                f"{source}: signed as {signed.describe()}, but this client runs {name} "
                "(wrong software)"
            )
        if hardware is not None and signed.hardware not in (None, hardware):
            raise TrustError(
                f"{source}: signed as {signed.describe()}, but this client is hardware "
                f"{hardware} (wrong hardware)"
            )


def verify_bundle(
    path: str | os.PathLike[str],
    *,
    repo: str | os.PathLike[str],
    root: str | os.PathLike[str],
    state_dir: str | os.PathLike[str] | None = None,
    name: str | None = None,
    hardware: str | None = None,
) -> VerifiedBundle:
    """Verify the bundle at `path` against the repository directory `repo` and pinned `root`."""
    state = None if state_dir is None else Path(state_dir)
    client = TrustClient.for_directory(Path(repo), Path(root), state)
    return client.verify_file(Path(path), name=name, hardware=hardware)
