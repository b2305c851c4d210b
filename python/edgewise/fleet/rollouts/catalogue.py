"""Which bundles may be rolled out: the targets a TUF repository directory signs and serves.

A rollout of a bundle the repository does not list would only make every device fail its
verification, so the API refuses it up front (404) and the engine halts a rollout whose bundle
was withdrawn.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tuf.api.exceptions import RepositoryError
from tuf.api.metadata import Metadata, Targets

from ...trust.repository import METADATA_DIR, TARGETS_DIR
from ...trust.targets import target_path


def repository_catalogue(directory: Path) -> Callable[[str, int], bool]:
    """`known_bundle` over the repository at `directory`: a bundle is known when the current
    targets metadata (top-level or a delegated role) lists it and its file is in ``targets/``.
    Read at each call, so bundles published while the control plane runs are found."""

    def known_bundle(name: str, version: int) -> bool:
        path = target_path(name, version)
        if not any((directory / TARGETS_DIR).glob(f"*.{path}")):
            return False
        return any(path in targets.targets for targets in _targets_roles(directory))

    return known_bundle


def _targets_roles(directory: Path) -> list[Targets]:
    metadata = directory / METADATA_DIR
    roles, seen = [Targets.type], set()
    found: list[Targets] = []
    while roles:
        role = roles.pop()
        if role in seen:  # a delegation cycle
            continue
        seen.add(role)
        try:
            targets = Metadata[Targets].from_file(str(metadata / f"{role}.json")).signed
        except (OSError, RepositoryError, ValueError):
            continue  # not published yet, or unreadable: it lists nothing
        found.append(targets)
        if targets.delegations is not None and targets.delegations.roles is not None:
            roles.extend(targets.delegations.roles)
    return found
