"""Mosquitto's password file, read and written without Mosquitto.

The embedded broker takes the very file `mosquitto_passwd` writes, so an operator can move a
fleet between the embedded broker and Mosquitto without touching a credential. One line per
user, `username:hash`:

- `$7$ITERATIONS$SALT$HASH` (Mosquitto 2.0): PBKDF2-HMAC-SHA512 of the password with the raw
  salt, base64 salt and hash (`mosquitto_passwd` uses 101 iterations and a 12-byte salt);
- `$6$SALT$HASH` (Mosquitto 1.x): SHA-512 of the password followed by the raw salt.

Both are computed with the standard library's `hashlib`; comparisons are constant-time.
`hash_password` writes the `$7$` form, with more iterations than `mosquitto_passwd` uses
(the count is part of the hash, so Mosquitto verifies it as well).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import BrokerConfigError

PBKDF2_ITERATIONS = 20_000  # tens of ms per check: fine for a connect, costly for a guesser
SALT_BYTES = 12  # as mosquitto_passwd
MAX_ITERATIONS = 10_000_000  # a file asking for more would stall every connect
_DIGEST_BYTES = 64  # SHA-512


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True)
class _Hash:
    iterations: int | None  # None: the Mosquitto 1.x salted SHA-512
    salt: bytes
    digest: bytes

    def of(self, password: bytes) -> bytes:
        if self.iterations is None:
            return hashlib.sha512(password + self.salt).digest()
        return hashlib.pbkdf2_hmac("sha512", password, self.salt, self.iterations)


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (a hash from a password file). An unreadable hash
    matches nothing: `read_password_file` rejects those up front."""
    try:
        stored = _parse(encoded)
    except ValueError:
        return False
    return hmac.compare_digest(stored.digest, stored.of(password.encode()))


def _parse(encoded: str) -> _Hash:
    parts = encoded.split("$")
    try:
        if len(parts) == 5 and parts[:2] == ["", "7"]:
            iterations = int(parts[2])
            if not 1 <= iterations <= MAX_ITERATIONS:
                raise ValueError(f"iteration count {iterations} out of range")
            found = _Hash(iterations, base64.b64decode(parts[3]), base64.b64decode(parts[4]))
        elif len(parts) == 4 and parts[:2] == ["", "6"]:
            found = _Hash(None, base64.b64decode(parts[2]), base64.b64decode(parts[3]))
        else:
            raise ValueError("expected a Mosquitto $7$ (PBKDF2-SHA512) or $6$ (SHA-512) hash")
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from exc
    if len(found.digest) != _DIGEST_BYTES:
        raise ValueError("the hash is not SHA-512 sized")
    return found


def read_password_file(path: Path) -> dict[str, str]:
    """username -> hash of every user in a Mosquitto password file; `BrokerConfigError` naming
    the file and line for anything unreadable (so that a typo never locks a fleet out silently)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BrokerConfigError(f"{path}: cannot read the password file: {exc}") from exc
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        username, sep, encoded = line.partition(":")
        where = f"{path}, line {number}"
        if not sep or not username:
            raise BrokerConfigError(f"{where}: expected `username:hash`")
        try:
            _parse(encoded)
        except ValueError as exc:
            raise BrokerConfigError(f"{where} (user {username!r}): {exc}") from exc
        if username in users:
            raise BrokerConfigError(f"{where}: user {username!r} appears twice")
        users[username] = encoded
    return users


def set_password(path: Path, username: str, password: str | None) -> None:
    """Add or replace `username` in the password file (created 0600), or delete it when
    `password` is None. Written to a temporary file and renamed: never half-written."""
    if not username or ":" in username:
        raise BrokerConfigError(f"username {username!r}: must be non-empty and without ':'")
    users = read_password_file(path) if path.exists() else {}
    if password is None:
        if users.pop(username, None) is None:
            raise BrokerConfigError(f"{path}: no user {username!r} to delete")
    else:
        users[username] = hash_password(password)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(f"{user}:{encoded}\n" for user, encoded in users.items())
    temporary.replace(path)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
