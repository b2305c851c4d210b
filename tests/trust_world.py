"""A real repository, keys and client in a temporary directory, and the tools an attacker has:
other keys, stolen keys, old files, and a text editor."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata
from tuf.api.serialization.json import JSONSerializer

from edgewise import Bundle
from edgewise.trust import DirectoryRepository, KeyRing, TrustClient, VerifiedBundle, init_keys
from edgewise.trust.keys import PRIVATE_SUFFIX, load_signer, read_public_key


def variant(bundle: Bundle, *, name: str | None = None, version: int | None = None) -> Bundle:
    """The same model under another name or version, as a compiler would make it."""
    manifest = {k: v for k, v in bundle.manifest.items() if k != "files"}
    manifest.update({"name": name or bundle.name, "version": version or bundle.version})
    return Bundle.create(manifest, bundle.model, bundle.health, bundle.reference)


@dataclass
class World:
    tmp: Path
    bundle: Bundle
    expiry: dict[str, timedelta] | None = None

    def __post_init__(self) -> None:
        self.keys = self.tmp / "keys"
        self.public = init_keys(self.keys)
        self.repo = self.tmp / "repo"
        self.state = self.tmp / "client-state"
        self.bundle_path = self.bundle.write(
            self.tmp / f"{self.bundle.name}-{self.bundle.version}.ewb"
        )

    def repository(self, *key_dirs: Path) -> DirectoryRepository:
        return DirectoryRepository(self.repo, KeyRing(list(key_dirs) or [self.keys]), self.expiry)

    def init(self) -> DirectoryRepository:
        repository = self.repository()
        repository.init(operator_keys=[self.public["operator"]])
        # The client pins the first root, copied out of the repository once.
        shutil.copy(self.repo / "metadata" / "1.root.json", self.tmp / "root.json")
        return repository

    def publish(
        self, bundle: Bundle | None = None, *, keys: list[Path] | None = None, **add: Any
    ) -> Path:
        bundle = bundle or self.bundle
        path = bundle.write(self.tmp / "out" / f"{bundle.name}-{bundle.version}.ewb")
        self.repository(*(keys or [])).add_bundle(path, **add)
        return path

    def client(self) -> TrustClient:
        return TrustClient.for_directory(self.repo, self.tmp / "root.json", self.state)

    def verify(self, path: Path | None = None, **kwargs: Any) -> VerifiedBundle:
        return self.client().verify_file(path or self.bundle_path, **kwargs)

    def metadata(self, name: str) -> Path:
        return self.repo / "metadata" / name

    def load(self, name: str) -> Metadata:
        return Metadata.from_file(str(self.metadata(name)))

    def signer(self, name: str, directory: Path | None = None) -> CryptoSigner:
        directory = directory or self.keys
        key = read_public_key(directory / f"{name}.pub")
        return load_signer(directory / f"{name}{PRIVATE_SUFFIX}", key)

    def forge(
        self,
        name: str,
        change: Callable[[Any], None],
        signers: Iterable[CryptoSigner],
        *,
        write_as: Iterable[str] | None = None,
    ) -> Metadata:
        """Edit metadata file `name` as an attacker would, sign it with `signers` and write it
        under `write_as` (default: the same name)."""
        md = self.load(name)
        change(md.signed)
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)
        data = md.to_bytes(JSONSerializer(compact=False))
        for target in write_as or [name]:
            self.metadata(target).write_bytes(data)
        return md

    def current(self, role: str) -> int:
        return int(self.load(f"{role}.json").signed.version)
