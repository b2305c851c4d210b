"""Ed25519 signing keys on disk: one private key file and one public key file per key.

A key directory holds, for each key NAME, ``NAME.key`` (PKCS#8 PEM, mode 0600, encrypted when
the ``EDGEWISE_KEY_PASSPHRASE`` environment variable is set) and ``NAME.pub`` (the public key as
TUF key JSON, with its key id). A `KeyRing` looks signers up by key id across several
directories, so an operation that needs keys held by different people (a root rotation signed by
the old and the new root keys) reads each directory it is given and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from ..exceptions import TrustError

PASSPHRASE_ENV = "EDGEWISE_KEY_PASSPHRASE"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"

ROOT_KEY_PREFIX = "root-"
#: The keys `edgewise keys init` makes besides the root keys, and what each signs.
ROLE_KEYS = {
    "targets": "the list of bundles (names, versions, lengths, hashes)",
    "snapshot": "the versions of every targets metadata file, so they move together",
    "timestamp": "the current snapshot, re-signed often so that a frozen view goes stale",
    "operator": "fleet commands (rollouts, stops) sent to devices",
}


def root_key_names(count: int) -> list[str]:
    return [f"{ROOT_KEY_PREFIX}{i}" for i in range(1, count + 1)]


def passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def generate_key(directory: Path, name: str) -> SSlibKey:
    """Make a new Ed25519 key NAME in `directory`; never overwrites an existing key."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = directory / f"{name}{PRIVATE_SUFFIX}"
    private_key = Ed25519PrivateKey.generate()
    secret = passphrase()
    encryption = BestAvailableEncryption(secret) if secret else NoEncryption()
    pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption)
    try:
        # O_EXCL refuses to replace a key; the mode is set at creation so the secret is never
        # readable by others, not even for a moment.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise TrustError(
            f"{private_path}: a key already exists; keys are never overwritten"
        ) from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_key = SSlibKey.from_crypto(private_key.public_key())
    write_public_key(directory / f"{name}{PUBLIC_SUFFIX}", public_key)
    return public_key


def write_public_key(path: Path, key: Key) -> None:
    path.write_text(json.dumps({"keyid": key.keyid, **key.to_dict()}, indent=2) + "\n")


def read_public_key(path: Path) -> SSlibKey:
    try:
        data = json.loads(path.read_text())
        return SSlibKey.from_dict(data.pop("keyid"), data)
    except OSError as exc:
        raise TrustError(f"{path}: cannot read public key: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise TrustError(f"{path}: not an edgewise public key file ({exc})") from exc


def init_keys(directory: Path, root_keys: int = 3) -> dict[str, SSlibKey]:
    """Make the root keys and one key for each other role; returns the public keys by name."""
    names = [*root_key_names(root_keys), *ROLE_KEYS]
    existing = [n for n in names if (directory / f"{n}{PRIVATE_SUFFIX}").exists()]
    if existing:
        raise TrustError(f"{directory}: already holds keys ({', '.join(existing)})")
    return {name: generate_key(directory, name) for name in names}


def load_signer(private_path: Path, public_key: SSlibKey) -> CryptoSigner:
    try:
        pem = private_path.read_bytes()
    except OSError as exc:
        raise TrustError(f"{private_path}: cannot read private key: {exc.strerror}") from exc
    try:
        private_key = load_pem_private_key(pem, passphrase())
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase for a plain key
        raise TrustError(
            f"{private_path}: {exc} (the passphrase comes from ${PASSPHRASE_ENV})"
        ) from exc
    except ValueError as exc:
        raise TrustError(f"{private_path}: cannot decrypt or parse the private key") from exc
    try:
        return CryptoSigner(private_key, public_key)
    except ValueError as exc:
        raise TrustError(f"{private_path}: does not match its public key") from exc


@dataclass(frozen=True)
class KeyRing:
    """The key directories an operation may sign with, searched in order.

    Names may repeat across directories (a rotation reads ``root-1`` from the old and the new
    directory), so signers are found by key id, and a name means the first directory's key.
    """

    directories: Sequence[Path]

    def _entries(self) -> Iterator[tuple[str, Path, SSlibKey]]:
        for directory in self.directories:
            for path in sorted(directory.glob(f"*{PUBLIC_SUFFIX}")):
                yield path.stem, directory, read_public_key(path)

    def public_keys(self) -> dict[str, SSlibKey]:
        found: dict[str, SSlibKey] = {}
        for name, _, key in self._entries():
            found.setdefault(name, key)
        return found

    def public_key(self, name: str) -> SSlibKey:
        try:
            return self.public_keys()[name]
        except KeyError:
            raise TrustError(f"no key named {name!r} in {self.describe()}") from None

    def signers_for(self, keyids: Iterable[str]) -> list[CryptoSigner]:
        """Signers for those of `keyids` whose private key is in one of the directories."""
        wanted = set(keyids)
        signers = []
        for name, directory, key in self._entries():
            private_path = directory / f"{name}{PRIVATE_SUFFIX}"
            if key.keyid in wanted and private_path.exists():
                signers.append(load_signer(private_path, key))
                wanted.discard(key.keyid)
        return signers

    def describe(self) -> str:
        return ", ".join(str(d) for d in self.directories)
