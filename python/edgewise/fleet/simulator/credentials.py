"""MQTT passwords of simulated devices, and a Mosquitto password file for thousands of them.

Each simulated device logs in as its own user, so the broker's ACL (`transport/acl.py`) holds
for it as for a real device. Passwords come from a file of ``device:password`` lines (the
plain-text input of ``mosquitto_passwd -U``) or from a template such as ``secret-{device}``
(convenient for a throwaway test broker, never for a real one). `write_password_file` hashes a
whole fleet's passwords with one run of ``mosquitto_passwd -U`` (a run per user would take
minutes for thousands).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ...exceptions import ConfigError

PASSWD_TIMEOUT = 300.0  # seconds for mosquitto_passwd to hash a whole fleet's passwords


def read_credentials(path: Path) -> dict[str, str]:
    """``device:password`` lines (blank lines and ``#`` comments ignored)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read credentials: {exc.strerror}") from exc
    passwords = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        device, colon, password = line.partition(":")
        if not colon or not device or not password:
            raise ConfigError(f"{path}:{number}: expected device:password")
        passwords[device] = password
    return passwords


def password_source(credentials: Path | None, template: str | None) -> Callable[[str], str]:
    """device id -> password, from a credentials file or a template with ``{device}``."""
    if (credentials is None) == (template is None):
        raise ConfigError("give either a credentials file or a password template")
    if template is not None:
        if "{device}" not in template:
            raise ConfigError(f"password template {template!r} has no {{device}}")
        return lambda device: template.replace("{device}", device)
    assert credentials is not None
    passwords = read_credentials(credentials)

    def lookup(device: str) -> str:
        try:
            return passwords[device]
        except KeyError:
            raise ConfigError(f"{credentials}: no password for device {device}") from None

    return lookup


def new_passwords(devices: Iterable[str]) -> dict[str, str]:
    return {device: secrets.token_urlsafe(16) for device in devices}


def write_credentials(passwords: Mapping[str, str], path: Path) -> Path:
    """The plain ``device:password`` file, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(f"{user}:{password}\n" for user, password in passwords.items())
    return path


def write_password_file(passwords: Mapping[str, str], path: Path) -> Path:
    """A Mosquitto ``password_file`` for `passwords` (user -> password), hashed in one run."""
    tool = shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/sbin:/usr/bin"
    )
    if tool is None:
        raise ConfigError("mosquitto_passwd not found (Debian's mosquitto package has it)")
    write_credentials(passwords, path)
    try:
        subprocess.run(
            [tool, "-U", str(path)], check=True, capture_output=True, timeout=PASSWD_TIMEOUT
        )
    except subprocess.CalledProcessError as exc:
        raise ConfigError(f"mosquitto_passwd -U {path}: {exc.stderr.decode().strip()}") from exc
    return path
