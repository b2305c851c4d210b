"""A simulated device's A/B slots in memory: the same `SlotTable` and `Installer` steps as the
agent's slots on disk, without the files (and without their crash safety: a simulated device
that restarts starts empty)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...agent.slots import SlotTable
from ...transport.messages import BundleRef


class MemorySlots:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch  # the health check's temporary files
        self._table = SlotTable()
        self._bytes: dict[str, bytes] = {}

    def load(self) -> SlotTable:
        return self._table  # immutable: every change saves a new one

    def save(self, table: SlotTable) -> None:
        self._table = table

    def clear(self, slot: str) -> None:
        self._bytes.pop(slot, None)

    def put(self, slot: str, downloaded: bytes) -> bytes:
        self._bytes[slot] = downloaded
        return downloaded

    def holds(self, slot: str, bundle: BundleRef) -> bool:
        """Whether the slot's bytes are exactly `bundle` (checked again, as the agent does
        before it rolls back to a slot)."""
        data = self._bytes.get(slot)
        return (
            data is not None
            and len(data) == bundle.length
            and hashlib.sha256(data).hexdigest() == bundle.sha256
        )
