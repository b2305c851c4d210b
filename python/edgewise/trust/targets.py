"""How a bundle appears in TUF targets metadata: its target path and its signed custom fields.

The target path is ``NAME-VERSION.ewb``, the name `edgewise compile` gives the file, so path
patterns in delegations (``credit-*``) select bundle names. The custom field repeats the name and
version and may add a hardware class; it is signed with the rest of the targets metadata, so a
client can refuse a genuine bundle that was made for another model or another kind of device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tuf.api.metadata import TargetFile

from ..exceptions import TrustError

#: Where a repository keeps its TUF metadata; verification needs it without the signing side.
METADATA_DIR = "metadata"
SUFFIX = ".ewb"
CUSTOM_KEY = "edgewise"


def target_path(name: str, version: int) -> str:
    return f"{name}-{version}{SUFFIX}"


@dataclass(frozen=True)
class BundleTarget:
    """What the signed metadata says a target is."""

    name: str
    version: int
    hardware: str | None = None

    @property
    def path(self) -> str:
        return target_path(self.name, self.version)

    def to_custom(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.hardware is not None:
            fields["hardware"] = self.hardware
        return {CUSTOM_KEY: fields}

    @classmethod
    def from_target_file(cls, target: TargetFile) -> BundleTarget:
        """Read the custom fields, refusing a target whose fields disagree with its path."""
        custom = target.custom
        fields = custom.get(CUSTOM_KEY) if isinstance(custom, dict) else None
        if not isinstance(fields, dict):
            raise TrustError(f"target {target.path}: signed without edgewise bundle information")
        name, version, hardware = fields.get("name"), fields.get("version"), fields.get("hardware")
        if not (
            isinstance(name, str)
            and isinstance(version, int)
            and (hardware is None or isinstance(hardware, str))
        ):
            raise TrustError(f"target {target.path}: malformed edgewise bundle information")
        described = cls(name, version, hardware)
        if described.path != target.path:
            raise TrustError(
                f"target {target.path}: signed as {name} version {version}, which is "
                f"{described.path}"
            )
        return described

    def describe(self) -> str:
        on = f" for hardware {self.hardware}" if self.hardware else ""
        return f"{self.name} version {self.version}{on}"
