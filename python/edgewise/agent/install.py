"""Install a bundle into the inactive slot, check it, and switch the pointer; or roll back.

The steps, each survivable by a crash (the restart test kills the agent at every one):

1. the pointer marks the inactive slot ``downloading`` with the bundle it is to hold;
2. the downloaded file is moved into that slot (it was fsynced when assembled);
3. the trust layer verifies the slot's exact bytes, name, hardware class and version;
4. the health check loads the model and scores the health sample;
5. the pointer is replaced atomically: the new slot is active, the old one stays installed.

Until step 5 the pointer names the old slot, so a crash anywhere before it leaves the old model
serving, and on restart `SlotStore.recover` fails the half-done slot and removes its files.
A failed check marks the slot failed with the reason; the old slot never stops serving.

The installer works on any `SlotStorage`: the agent's `SlotStore` keeps slots on disk, the
fleet simulator's devices keep theirs in memory, and both go through these same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from ..exceptions import EdgewiseError, InstallError
from ..transport.messages import BundleRef, SlotStatus
from .crashpoints import crash_point
from .health import HealthPolicy, HealthReport, check_health
from .slots import SlotRecord, SlotTable

if TYPE_CHECKING:
    from ..bundle import Bundle
    from ..model import Model
    from ..trust import VerifiedBundle

#: Where a slot's bundle lives: a file path for the agent, the bytes for a simulated device.
Where = TypeVar("Where")
#: The health check of a verified bundle: the loaded model and its report, or `InstallError`.
HealthCheck = Callable[["Bundle"], tuple["Model", HealthReport]]


class SlotStorage(Protocol[Where]):
    """The A/B slots and their pointer (`slots.SlotStore` on disk)."""

    scratch: Path  # a directory for the health check's temporary files

    def load(self) -> SlotTable: ...
    def save(self, table: SlotTable) -> None: ...
    def clear(self, slot: str) -> None: ...
    def holds(self, slot: str, bundle: BundleRef) -> bool: ...
    def put(self, slot: str, downloaded: Where) -> Where:
        """Move the downloaded bundle into `slot`; where it now is."""
        ...


@dataclass(frozen=True)
class Installed:
    slot: str
    bundle: BundleRef
    previous: BundleRef | None
    model: Model
    health: HealthReport
    table: SlotTable


class Installer(Generic[Where]):
    def __init__(
        self,
        store: SlotStorage[Where],
        verify: Callable[[Where], VerifiedBundle],
        check: HealthPolicy | HealthCheck,
    ) -> None:
        """`verify` checks the bundle in a slot through the trust layer (without recording its
        version); `check` is the health check, or the policy of the standard one."""
        self.store = store
        self.verify = verify
        if isinstance(check, HealthPolicy):
            policy = check
            self.check: HealthCheck = lambda bundle: check_health(bundle, policy, store.scratch)
        else:
            self.check = check

    def mark(self, bundle: BundleRef) -> SlotTable:
        """Give the inactive slot to `bundle` (status downloading) before its bytes arrive, so
        the device reports what it is doing; a restart before `install` abandons the slot."""
        table = self.store.load()
        if table.active_bundle == bundle:
            raise InstallError(f"{bundle.name} version {bundle.version} is already active")
        slot = table.inactive()
        self.store.clear(slot)
        marked = table.with_slot(slot, SlotRecord(SlotStatus.DOWNLOADING, bundle))
        self.store.save(marked)
        return marked

    def install(self, downloaded: Where, bundle: BundleRef) -> Installed:
        """Install the downloaded `bundle`; `InstallError` if it may not serve."""
        marked = self.mark(bundle)
        slot = marked.inactive()  # marking leaves the active slot as it was
        crash_point("install.marked")
        target = self.store.put(slot, downloaded)
        crash_point("install.written")
        try:
            verified = self.verify(target)
            crash_point("install.verified")
            model, report = self.check(verified.bundle)
            crash_point("install.checked")
        except EdgewiseError as exc:
            self._fail(marked, slot, bundle, str(exc))
            raise InstallError(f"slot {slot}: {exc}") from exc
        switched = marked.activate(slot)
        self.store.save(switched)
        crash_point("install.switched")
        return Installed(slot, bundle, marked.active_bundle, model, report, switched)

    def rollback(self) -> SlotTable:
        """Serve the other slot again (it must hold an installed bundle)."""
        table = self.store.load()
        if table.active is None:
            raise InstallError("nothing to roll back from: no slot is active")
        other = table.other(table.active)
        record = table.slots[other]
        if record.status is not SlotStatus.INSTALLED or record.bundle is None:
            raise InstallError(f"cannot roll back: slot {other} is {record.status.value}")
        if not self.store.holds(other, record.bundle):
            self._fail(table, other, record.bundle, "its bundle file no longer matches")
            raise InstallError(f"cannot roll back: slot {other}'s bundle file no longer matches")
        switched = table.activate(other)
        self.store.save(switched)
        return switched

    def _fail(self, table: SlotTable, slot: str, bundle: BundleRef, reason: str) -> None:
        self.store.save(table.with_slot(slot, SlotRecord(SlotStatus.FAILED, bundle, reason)))
        self.store.clear(slot)
