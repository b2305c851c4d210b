"""What edgewise runs with: installed library versions, for lineage and benchmark reports."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable


def library_versions(libraries: Iterable[str]) -> dict[str, str]:
    """Installed version of each distribution, or "unknown" where it is not installed."""
    versions = {}
    for library in libraries:
        try:
            versions[library] = importlib.metadata.version(library)
        except importlib.metadata.PackageNotFoundError:
            versions[library] = "unknown"
    return versions
