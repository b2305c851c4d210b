"""The highest bundle version a client has accepted for each bundle name, kept across runs.

TUF keeps the metadata from going backwards; this keeps the bundles from going backwards: an
older version stays validly signed forever, so without this record an attacker who can hand a
client files could hand it last year's model.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..bundle import write_atomic
from ..exceptions import TrustError

FILE_NAME = "accepted-versions.json"


class AcceptedVersions:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    def load(self) -> dict[str, int]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise TrustError(f"{self.path}: unreadable record of accepted versions: {exc}") from exc
        if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
            raise TrustError(f"{self.path}: not a record of accepted versions")
        return data

    def check(self, name: str, version: int) -> None:
        """Refuse `version` of `name` if a newer one was accepted before."""
        last = self.load().get(name)
        if last is not None and version < last:
            raise TrustError(
                f"{name} version {version} is older than version {last}, which this client "
                f"already accepted (a rollback; the record is {self.path})"
            )

    def record(self, name: str, version: int) -> None:
        accepted = self.load()
        if accepted.get(name, -1) < version:
            accepted[name] = version
            self._write(accepted)

    def _write(self, accepted: dict[str, int]) -> None:
        write_atomic(self.path, json.dumps(accepted, indent=2, sort_keys=True).encode())


class AcceptedInMemory(AcceptedVersions):
    """The same record for a simulated device, kept as long as its process runs."""

    def __init__(self, device: str) -> None:
        self.path = Path(f"<memory of {device}>")
        self._accepted: dict[str, int] = {}

    def load(self) -> dict[str, int]:
        return dict(self._accepted)

    def _write(self, accepted: dict[str, int]) -> None:
        self._accepted = accepted
