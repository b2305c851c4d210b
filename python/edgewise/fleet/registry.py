"""The device registry: what devices say about themselves, from their state and event messages.

A device's report is the truth about what it runs: its state sets online/offline, the active
bundle (cleared when it reports none), its slots and the labels it is configured with. Operator
labels (set through the API) are kept apart and win over the device's labels of the same name,
so an operator can override a label without the next state message undoing it; removing the
operator's label brings the device's own value back. Out-of-order states are handled by the rule
in `store/reports.py`. Events are stored once per message id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..transport.messages import Event, State, Status
from .store import MAX_INTEGER, DeviceEvent, StateReport, Store

log = logging.getLogger(__name__)


def message_key(device: str, message_id: str) -> str:
    """The stored id of a device's message: its id is unique per sender only, so it is scoped
    to the device (one device cannot shadow another's messages by reusing their ids)."""
    return f"{device}/{message_id}"


class Registry:
    """Applies batches of state and event messages to the store, one transaction a batch."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rejected = 0  # states naming a bundle version the store cannot hold

    def record(self, batch: Sequence[tuple[str, State | Event]]) -> int:
        """Apply `(device id, message)` pairs, in order; the number of events newly stored
        (the others were redeliveries)."""
        states: list[StateReport] = []
        events: list[DeviceEvent] = []
        for device, message in batch:
            if isinstance(message, State):
                if message.active is not None and message.active.version > MAX_INTEGER:
                    self.rejected += 1
                    log.warning(
                        "device %s: state %s: bundle version %d is too large",
                        device,
                        message.id,
                        message.active.version,
                    )
                    continue
                states.append(_report(device, message))
            else:
                events.append(
                    DeviceEvent(
                        device_id=device,
                        kind=message.name,
                        at=message.ts,
                        detail=message.detail,
                        message_id=message_key(device, message.id),
                    )
                )
        return self.store.record_reports(states, events)


def _report(device: str, state: State) -> StateReport:
    active = state.active
    return StateReport(
        device_id=device,
        at=state.ts,
        online=state.status is Status.ONLINE,
        bundle=None if active is None else (active.name, active.version),
        slots={name: slot.to_json() for name, slot in state.slots.items()},
        labels=dict(state.labels),
    )
