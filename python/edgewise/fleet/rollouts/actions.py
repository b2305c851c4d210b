"""What an operator does to rollouts: start, pause, resume, abort. Each change is written to
the audit log in the transaction that makes it; the engine's next tick acts on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from securesystemslib.signer import Signature

from ...exceptions import RolloutError
from ..audit import AuditLog
from ..selector import Selector
from ..store import NewRollout, Rollout, Store
from .policy import RolloutPolicy
from .waves import assign_waves


def start_rollout(
    store: Store,
    bundle: tuple[str, int],
    selector: Selector,
    policy: RolloutPolicy,
    *,
    actor: str,
    statement: dict[str, Any],
    signature: Signature | None,
    now: float,
) -> Rollout:
    """Store a running rollout with its devices placed in waves. `statement` is what the
    operator asked for (and signed), as the audit log records it."""
    device_ids = [device.id for device in store.devices(selector)]
    if not device_ids:
        raise RolloutError(f"selector {selector.text!r} matches no device")
    new = NewRollout(
        bundle=bundle,
        selector=selector.text,
        policy=policy.to_json(),
        wave_sizes=[wave.describe() for wave in policy.waves],
        created_by=actor,
    )
    return store.create_rollout(
        new,
        lambda rollout_id: assign_waves(rollout_id, device_ids, policy),
        now,
        AuditLog.prepare(actor, "rollout.start", statement, signature),
    )


def pause_rollout(
    store: Store, rollout_id: int, *, actor: str, signature: Signature | None, now: float
) -> Rollout:
    """No new commands go out; those already out are still followed to their end."""
    change = _OperatorChange(store, rollout_id, actor, signature, now)
    return change.apply("rollout.pause", ("running",), state="paused", reason=f"paused by {actor}")


def resume_rollout(
    store: Store, rollout_id: int, *, actor: str, signature: Signature | None, now: float
) -> Rollout:
    """Carry a paused rollout on. A halted one is not resumed: its failures still count, so
    the operator aborts it and starts a new rollout once the cause is fixed."""
    change = _OperatorChange(store, rollout_id, actor, signature, now)
    return change.apply("rollout.resume", ("paused",), state="running", reason=None)


def abort_rollout(
    store: Store,
    rollout_id: int,
    *,
    rollback: bool,
    actor: str,
    signature: Signature | None,
    now: float,
) -> Rollout:
    """Stop for good; with `rollback`, every device that installed the bundle in this rollout
    is sent back to the bundle it ran before."""
    change = _OperatorChange(store, rollout_id, actor, signature, now, {"rollback": rollback})
    extra = {"rollback": "all"} if rollback else {}
    return change.apply(
        "rollout.abort",
        ("running", "paused", "halted"),
        state="aborted",
        reason=f"aborted by {actor}",
        **extra,
    )


@dataclass(frozen=True)
class _OperatorChange:
    store: Store
    rollout_id: int
    actor: str
    signature: Signature | None
    now: float
    options: dict[str, Any] = field(default_factory=dict)

    def apply(self, action: str, allowed_from: tuple[str, ...], **changes: Any) -> Rollout:
        """Change the rollout and audit the action (what the operator signed: the rollout's id
        and the options) in one transaction."""
        statement = {"rollout": self.rollout_id, **self.options}
        return self.store.change_rollout(
            self.rollout_id,
            self.now,
            allowed_from=allowed_from,
            audit=AuditLog.prepare(self.actor, action, statement, self.signature),
            **changes,
        )
