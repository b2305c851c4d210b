"""The bundle file: a tar archive holding a manifest, the ONNX model and the health sample.

Layout (format version 1)::

    manifest.json    what the model is, what it reads and writes, how faithful it is, lineage,
                     and the length and SHA-256 of every other member (so signing the manifest
                     covers the whole bundle)
    model.onnx       the model graph
    health.parquet   sample inputs with the outputs the fitted pipeline gave for them
    reference.profile  the training data's profile, for drift (docs/drift.md); bundles
                     compiled before it existed lack it

Reading is defensive: only regular files with known names, each within a size cap that is
checked before anything is read, and every member must match the hash the manifest lists.
Nothing is ever decompressed (a compressed archive is refused, and so is a sparse member, whose
header can promise gigabytes from a few bytes), and nothing is extracted to disk: members are
read into memory by name, so a path in the tar can never point outside anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import BundleError, EdgewiseError

FORMAT = "edgewise-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.onnx"
HEALTH = "health.parquet"
REFERENCE = "reference.profile"

#: Upper bounds on member sizes, checked from the tar header before reading.
MEMBER_LIMITS = {MANIFEST: 4 << 20, MODEL: 2 << 30, HEALTH: 256 << 20, REFERENCE: 64 << 20}
REQUIRED_MEMBERS = (MANIFEST, MODEL, HEALTH)
#: The largest bundle file worth opening: every member at its cap plus tar headers and padding.
MAX_BUNDLE_BYTES = sum(MEMBER_LIMITS.values()) + (1 << 20)
#: How compressed archives start; a bundle is a plain tar, so none of these is read.
COMPRESSION_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    manifest: dict[str, Any]
    model: bytes
    health: bytes
    reference: bytes | None = None

    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @classmethod
    def create(
        cls, manifest: dict[str, Any], model: bytes, health: bytes, reference: bytes | None = None
    ) -> Bundle:
        """A bundle whose manifest records the format and the hash of each member."""
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **manifest,
            "files": {
                name: {"length": len(data), "sha256": sha256_hex(data)}
                for name, data in _payload(model, health, reference)
            },
        }
        return cls(manifest, model, health, reference)

    def _members(self) -> list[tuple[str, bytes]]:
        manifest = json.dumps(self.manifest, indent=2, sort_keys=True).encode()
        return [(MANIFEST, manifest), *_payload(self.model, self.health, self.reference)]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data in self._members():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 0  # same inputs, same bytes
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically: a temporary file in the same directory, fsynced, then renamed."""
        return write_atomic(Path(path), self.to_bytes())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Bundle:
        path = Path(path)
        return cls.from_bytes(read_capped(path, MAX_BUNDLE_BYTES), source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "bundle") -> Bundle:
        members = _read_members(data, source)
        manifest = _parse_manifest(members[MANIFEST], source)
        listed_files = manifest["files"]
        for name, data in members.items():
            if name == MANIFEST:
                continue
            actual = {"length": len(data), "sha256": sha256_hex(data)}
            if listed_files.get(name) != actual:
                raise BundleError(f"{source}: {name} does not match the hash in the manifest")
        unlisted = sorted(set(listed_files) - set(members))
        if unlisted:
            raise BundleError(f"{source}: the manifest lists {unlisted[0]}, which is missing")
        return cls(manifest, members[MODEL], members[HEALTH], members.get(REFERENCE))


def _payload(model: bytes, health: bytes, reference: bytes | None) -> list[tuple[str, bytes]]:
    """Every member but the manifest, which lists them."""
    members = [(MODEL, model), (HEALTH, health)]
    if reference is not None:
        members.append((REFERENCE, reference))
    return members


def read_capped(
    path: Path,
    limit: int,
    *,
    limit_name: str | None = None,
    error: type[EdgewiseError] = BundleError,
) -> bytes:
    """The bytes of `path`, refusing a file (or a device, or a growing file) over `limit`.

    Reads one byte past the limit and no more: enough to tell, whatever the file holds.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read bundle: {exc.strerror}") from exc
    if len(data) > limit:
        raise error(f"{path}: longer than {limit_name or f'the limit of {limit} bytes'}")
    return data


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the bundle at `path`, reading the tar headers and the manifest.

    Verification uses this to learn which signed target to look up before it reads the rest.
    """
    try:
        with path.open("rb") as handle:
            _refuse_compressed(handle.read(8), str(path))
            handle.seek(0)
            with tarfile.open(fileobj=handle, mode="r:") as tar:
                # Every header is checked (the reader seeks past member data), so a hostile
                # archive is refused here, before anything is looked up or read.
                seen: set[str] = set()
                manifest: bytes | None = None
                for info in tar:
                    _check_member(info, seen, str(path))
                    if info.name == MANIFEST:
                        manifest = _member_bytes(tar, info)
    except OSError as exc:
        raise BundleError(f"{path}: cannot read bundle: {exc.strerror}") from exc
    except tarfile.TarError as exc:
        raise BundleError(f"{path}: not a bundle (unreadable tar: {exc})") from exc
    if manifest is None:
        raise BundleError(f"{path}: missing {MANIFEST}")
    return _parse_manifest(manifest, str(path))


def _refuse_compressed(head: bytes, source: str) -> None:
    for magic, kind in COMPRESSION_MAGIC.items():
        if head.startswith(magic):
            raise BundleError(
                f"{source}: a {kind}-compressed archive; bundles are plain tar files and are "
                "never decompressed (a small compressed file can expand without bound)"
            )


def _check_member(info: tarfile.TarInfo, seen: set[str], source: str) -> None:
    """Refuse, from the header alone, any member that is not one expected regular file."""
    if info.name not in MEMBER_LIMITS:
        raise BundleError(f"{source}: unexpected member {info.name!r}")
    if not info.isreg():
        raise BundleError(f"{source}: member {info.name!r} is not a regular file")
    if info.issparse():
        raise BundleError(f"{source}: member {info.name!r} is a sparse file")
    if info.size > MEMBER_LIMITS[info.name]:
        raise BundleError(
            f"{source}: member {info.name!r} is {info.size} bytes, "
            f"over the limit of {MEMBER_LIMITS[info.name]}"
        )
    if info.name in seen:
        raise BundleError(f"{source}: member {info.name!r} appears twice")
    seen.add(info.name)


def _member_bytes(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    extracted = tar.extractfile(info)
    assert extracted is not None  # regular files always have content
    return extracted.read()


def _read_members(data: bytes, source: str) -> dict[str, bytes]:
    _refuse_compressed(data[:8], source)
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                _check_member(info, set(members), source)
                members[info.name] = _member_bytes(tar, info)
    except tarfile.TarError as exc:
        raise BundleError(f"{source}: not a bundle (unreadable tar: {exc})") from exc
    missing = [name for name in REQUIRED_MEMBERS if name not in members]
    if missing:
        raise BundleError(f"{source}: missing {', '.join(missing)}")
    return members


def _parse_manifest(data: bytes, source: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{source}: {MANIFEST} is not valid JSON: {exc}") from exc
    _check_manifest(manifest, source)
    return manifest


def _check_manifest(manifest: Any, source: str) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{source}: {MANIFEST} is not an edgewise bundle manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{source}: bundle format version {version!r} is not supported "
            f"(this edgewise reads version {FORMAT_VERSION})"
        )
    for key in ("name", "version", "task", "inputs", "schema", "outputs", "files"):
        if key not in manifest:
            raise BundleError(f"{source}: manifest lacks {key!r}")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # What tempfile.mkstemp does (a random name, O_EXCL, no symlink followed), without
    # importing tempfile and random: about 3 ms of every `edgewise score` start-up.
    tmp = path.parent / f".{path.name}.{os.urandom(8).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # whatever the umask: this is a shared artefact
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
