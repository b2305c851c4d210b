"""A/B slots in the state directory, and the pointer that says which one serves.

::

    STATE/slots.json        the pointer: which slot is active, and each slot's status, bundle
                            and failure reason. Replaced atomically (temp + fsync + rename +
                            directory fsync), so after a crash it is one whole version or the
                            previous one.
    STATE/slots/a/bundle.ewb, STATE/slots/b/bundle.ewb   the bundles themselves

A new bundle always goes to the slot that is not active, so the serving one is never touched
while another is written, checked or abandoned. Only the pointer decides what serves.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..exceptions import AgentError
from ..transport.messages import BundleRef, Slot, SlotStatus
from .durable import move_durably, remove_temporaries, replace_durably

FORMAT = "edgewise-agent-slots"
FORMAT_VERSION = 1
SLOT_NAMES = ("a", "b")
POINTER_FILE = "slots.json"
BUNDLE_FILE = "bundle.ewb"
#: The crash point between writing the new pointer and renaming it into place.
POINTER_CRASH_POINT = "pointer.written"


@dataclass(frozen=True)
class SlotRecord:
    status: SlotStatus = SlotStatus.EMPTY
    bundle: BundleRef | None = None
    reason: str | None = None  # why the slot failed

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "bundle": None if self.bundle is None else self.bundle.to_json(),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SlotRecord:
        bundle = data.get("bundle")
        return cls(
            SlotStatus(data["status"]),
            None if bundle is None else BundleRef(**bundle),
            data.get("reason"),
        )


@dataclass(frozen=True)
class SlotTable:
    """What the pointer file says: immutable, each change makes a new table to save."""

    active: str | None = None
    slots: dict[str, SlotRecord] = field(
        default_factory=lambda: {name: SlotRecord() for name in SLOT_NAMES}
    )

    @property
    def active_bundle(self) -> BundleRef | None:
        return None if self.active is None else self.slots[self.active].bundle

    def inactive(self) -> str:
        """The slot a new bundle goes to: never the active one."""
        return next(name for name in SLOT_NAMES if name != self.active)

    def other(self, slot: str) -> str:
        return next(name for name in SLOT_NAMES if name != slot)

    def with_slot(self, slot: str, record: SlotRecord) -> SlotTable:
        return replace(self, slots={**self.slots, slot: record})

    def activate(self, slot: str) -> SlotTable:
        """`slot` serves; the slot that served before stays installed, for rollback."""
        slots = dict(self.slots)
        if self.active is not None and self.active != slot:
            slots[self.active] = replace(slots[self.active], status=SlotStatus.INSTALLED)
        slots[slot] = replace(slots[slot], status=SlotStatus.ACTIVE, reason=None)
        return SlotTable(slot, slots)

    def to_state(self) -> dict[str, Slot]:
        """The slots as the retained `state` message reports them."""
        return {name: Slot(record.status, record.bundle) for name, record in self.slots.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "active": self.active,
            "slots": {name: record.to_json() for name, record in self.slots.items()},
        }

    @classmethod
    def from_json(cls, data: Any, source: str) -> SlotTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise AgentError(f"{source}: not an edgewise slot pointer")
        if data.get("format_version") != FORMAT_VERSION:
            raise AgentError(
                f"{source}: slot pointer format version {data.get('format_version')!r} is not "
                f"supported (this edgewise reads version {FORMAT_VERSION})"
            )
        try:
            slots = {name: SlotRecord.from_json(data["slots"][name]) for name in SLOT_NAMES}
            active = data["active"]
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentError(f"{source}: malformed slot pointer ({exc!r})") from exc
        if active is not None and active not in SLOT_NAMES:
            raise AgentError(f"{source}: active slot {active!r} is not one of {SLOT_NAMES}")
        return cls(active, slots)


class SlotStore:
    """The slot directories and the pointer of one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pointer = state_dir / POINTER_FILE
        self.directory = state_dir / "slots"
        self.scratch = self.directory  # the health check's temporary copy of its sample

    def put(self, slot: str, downloaded: Path) -> Path:
        """Move a downloaded bundle file into `slot` (durably); its path there."""
        target = self.bundle_path(slot)
        move_durably(downloaded, target)
        return target

    def bundle_path(self, slot: str) -> Path:
        return self.directory / slot / BUNDLE_FILE

    def load(self) -> SlotTable:
        if not self.pointer.exists():
            return SlotTable()
        try:
            data = json.loads(self.pointer.read_bytes())
        except (OSError, ValueError) as exc:
            raise AgentError(f"{self.pointer}: unreadable slot pointer: {exc}") from exc
        return SlotTable.from_json(data, str(self.pointer))

    def save(self, table: SlotTable) -> None:
        data = json.dumps(table.to_json(), indent=2, sort_keys=True).encode()
        replace_durably(self.pointer, data, POINTER_CRASH_POINT)

    def clear(self, slot: str) -> None:
        """Remove a slot's files (never the active slot's: callers pick the inactive one)."""
        shutil.rmtree(self.directory / slot, ignore_errors=True)

    def holds(self, slot: str, bundle: BundleRef) -> bool:
        """Whether the slot's file has exactly the length and SHA-256 of `bundle`."""
        path = self.bundle_path(slot)
        try:
            if path.stat().st_size != bundle.length:
                return False
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            return False
        return digest == bundle.sha256

    def recover(self) -> tuple[SlotTable, list[str]]:
        """The table to serve from after a (re)start, and what had to be repaired.

        An install the process did not finish (a slot still marked downloading) failed; its
        files go. A slot whose file no longer matches its record (disk corruption, an edit)
        failed too; if that was the active slot, the other slot serves if it is installed.
        Temporary files of interrupted writes go. The repaired table is saved.
        """
        self.state_dir.mkdir(parents=True, exist_ok=True)
        remove_temporaries(self.state_dir)
        table = self.load()
        repairs: list[str] = []
        for slot in SLOT_NAMES:
            record = table.slots[slot]
            if self.directory.joinpath(slot).is_dir():
                remove_temporaries(self.directory / slot)
            if record.status is SlotStatus.DOWNLOADING:
                table = table.with_slot(slot, self._failed(record, "interrupted by a restart"))
                self.clear(slot)
                repairs.append(f"slot {slot}: an interrupted install was abandoned")
            elif record.bundle is not None and record.status in (
                SlotStatus.ACTIVE,
                SlotStatus.INSTALLED,
            ):
                if not self.holds(slot, record.bundle):
                    why = "its bundle file no longer matches the installed bundle"
                    table = table.with_slot(slot, self._failed(record, why))
                    repairs.append(f"slot {slot}: {why}")
            elif record.status in (SlotStatus.EMPTY, SlotStatus.FAILED):
                self.clear(slot)
        if table.active is not None and table.slots[table.active].status is SlotStatus.FAILED:
            fallback = table.other(table.active)
            if table.slots[fallback].status is SlotStatus.INSTALLED:
                table = table.activate(fallback)
                repairs.append(f"slot {fallback}: serves again (rolled back)")
            else:
                table = replace(table, active=None)
                repairs.append("no installed slot is left to serve")
        if repairs:
            self.save(table)
        return table, repairs

    @staticmethod
    def _failed(record: SlotRecord, reason: str) -> SlotRecord:
        return SlotRecord(SlotStatus.FAILED, record.bundle, reason)
