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
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import BundleError

FORMAT = "edgewise-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.onnx"
HEALTH = "health.parquet"
REFERENCE = "reference.profile"

#: Upper bounds on member sizes, checked from the tar header before reading.
MEMBER_LIMITS = {MANIFEST: 4 << 20, MODEL: 2 << 30, HEALTH: 256 << 20, REFERENCE: 64 << 20}
REQUIRED_MEMBERS = (MANIFEST, MODEL, HEALTH)


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
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BundleError(f"{path}: cannot read bundle: {exc.strerror}") from exc
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "bundle") -> Bundle:
        members = _read_members(data, source)
        try:
            manifest = json.loads(members[MANIFEST])
        except ValueError as exc:
            raise BundleError(f"{source}: {MANIFEST} is not valid JSON: {exc}") from exc
        _check_manifest(manifest, source)
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


def _read_members(data: bytes, source: str) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                if info.name not in MEMBER_LIMITS:
                    raise BundleError(f"{source}: unexpected member {info.name!r}")
                if not info.isreg():
                    raise BundleError(f"{source}: member {info.name!r} is not a regular file")
                if info.size > MEMBER_LIMITS[info.name]:
                    raise BundleError(
                        f"{source}: member {info.name!r} is {info.size} bytes, "
                        f"over the limit of {MEMBER_LIMITS[info.name]}"
                    )
                if info.name in members:
                    raise BundleError(f"{source}: member {info.name!r} appears twice")
                extracted = tar.extractfile(info)
                assert extracted is not None  # regular files always have content
                members[info.name] = extracted.read()
    except tarfile.TarError as exc:
        raise BundleError(f"{source}: not a bundle (unreadable tar: {exc})") from exc
    missing = [name for name in REQUIRED_MEMBERS if name not in members]
    if missing:
        raise BundleError(f"{source}: missing {', '.join(missing)}")
    return members


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)  # mkstemp makes 0600; this is a shared artefact
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
