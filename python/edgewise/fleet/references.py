"""Reference profiles of bundle versions (the training data's profile, for drift), read from
the bundle files of the control plane's TUF repository and cached.

Targets are stored as ``targets/SHA256.NAME-VERSION.ewb`` (`ControlSide.bundle_file`). Should a
version have been published twice with different contents, the file that the repository's
current targets metadata lists is the one meant.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path

from .._core import Profile
from ..bundle import Bundle
from ..exceptions import BundleError, ProfileFormatError
from ..profiles import DriftReport
from ..trust.targets import target_path

log = logging.getLogger(__name__)


class ReferenceProfiles:
    """The reference profile of (name, version), or None for a bundle without one; without a
    `repository`, no bundle has one (the time series still work, drift does not)."""

    def __init__(self, repository: str | Path | None) -> None:
        self.repository = None if repository is None else Path(repository)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[Path, Profile | None]] = {}

    def reference(self, bundle: tuple[str, int]) -> Profile | None:
        path = self._bundle_file(*bundle)
        if path is None:
            return None
        with self._lock:
            cached = self._cache.get(bundle)
            if cached is not None and cached[0] == path:
                return cached[1]
        profile = _read_reference(path)
        with self._lock:
            self._cache[bundle] = (path, profile)
        return profile

    def known(self, bundle: tuple[str, int]) -> bool:
        """Whether the repository holds the bundle version."""
        return self._bundle_file(*bundle) is not None

    def _bundle_file(self, name: str, version: int) -> Path | None:
        if self.repository is None:
            return None
        target = target_path(name, version)
        found = sorted((self.repository / "targets").glob(f"*.{target}"))
        if len(found) <= 1:
            return found[0] if found else None
        sha256 = self._listed_sha256(target)
        for path in found:
            if path.name == f"{sha256}.{target}":
                return path
        raise BundleError(
            f"{self.repository / 'targets'}: {len(found)} files of {target} and none is the one "
            "the targets metadata lists"
        )

    def _listed_sha256(self, target: str) -> str | None:
        assert self.repository is not None
        try:
            document = json.loads((self.repository / "metadata" / "targets.json").read_text())
            return str(document["signed"]["targets"][target]["hashes"]["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _read_reference(path: Path) -> Profile | None:
    bundle = Bundle.read(path)
    if bundle.reference is None:
        log.warning("%s: the bundle has no reference profile; drift cannot be measured", path)
        return None
    try:
        return Profile.from_bytes(bundle.reference)
    except ProfileFormatError as exc:
        raise BundleError(f"{path}: reference.profile: {exc}") from exc


def worst_metrics(report: DriftReport) -> dict[str, float]:
    """The worst value of each drift metric over the report's columns: the largest distance
    ("psi", "js", "wasserstein_normed", ...), the smallest p-value. What the rollout engine's
    drift gate ('psi<0.2') compares with its threshold."""
    worst: dict[str, float] = {}
    for column in report.columns:
        for name, value in column.metrics.items():
            if value is None or math.isnan(value):
                continue
            pick = min if name.endswith("p_value") else max
            worst[name] = pick(worst[name], value) if name in worst else value
    return worst
