"""What a device's own report and its answers to a command say about its place in a rollout.

The device is the truth: it succeeded only when its retained state shows the target bundle
active *and* it announced ``install.done`` for it; it failed on ``install.failed``,
``command.rejected``, a timeout, or when it shows another bundle after it ran the target (a
local rollback, which the server would otherwise never learn about).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..store import Device, DeviceEvent, RolloutDevice


def bundle_text(bundle: tuple[str, int] | tuple[None, None] | None) -> str:
    if bundle is None or bundle[0] is None:
        return "no bundle"
    return f"{bundle[0]}-{bundle[1]}"


def reported(device: Device | None) -> tuple[str, int] | None:
    if device is None or device.bundle_name is None or device.bundle_version is None:
        return None
    return (device.bundle_name, device.bundle_version)


@dataclass(frozen=True)
class Sight:
    """What is known of one device of a rollout at one moment."""

    report: Device | None  # its retained state, as the registry stored it
    answers: Sequence[DeviceEvent]  # its events since the latest command to it
    target: tuple[str, int]
    timeout: float
    now: float


def observe(row: RolloutDevice, sight: Sight) -> dict[str, Any] | None:
    """The changes to the device's rollout row that its report and answers call for, or None."""
    if row.state in ("sent", "installing"):
        change = _install_progress(row, sight)
    elif row.state in ("succeeded", "skipped"):
        change = _still_running(sight.report, sight.target)
    elif row.state == "rolling_back":
        change = _rollback_progress(row, sight)
    else:
        change = None
    if change is None or (change["state"], change["reason"]) == (row.state, row.reason):
        return None
    return change


def _install_progress(row: RolloutDevice, sight: Sight) -> dict[str, Any] | None:
    done = started = False
    for event in sight.answers:
        about_target = (event.detail.get("bundle"), event.detail.get("version")) == sight.target
        if event.kind == "install.failed" and about_target:
            return _failed(f"install failed: {event.detail.get('reason', 'no reason given')}")
        if event.kind == "command.rejected":
            return _failed(f"command rejected: {event.detail.get('reason', 'no reason given')}")
        if event.kind == "install.done" and about_target:
            done = True
        started = started or event.kind in (
            "command.accepted",
            "install.started",
            "install.resumed",
        )
    if done and reported(sight.report) == sight.target:
        return {
            "state": "succeeded",
            "reason": f"installed; the device reports {bundle_text(sight.target)}",
            "switched_at": sight.now,
        }
    assert row.sent_at is not None  # a device is sent or installing only after a command
    if sight.now - row.sent_at >= sight.timeout:
        if done:
            showing = bundle_text(reported(sight.report))
            return _failed(
                f"install.done came but the device still reports {showing} "
                f"{sight.timeout:g}s after the command"
            )
        return _failed(
            f"no install.done within {sight.timeout:g}s of the command (install timeout)"
        )
    if done:
        return {
            "state": "installing",
            "reason": "install done; waiting for the device's state to show "
            + bundle_text(sight.target),
        }
    if started:
        return {"state": "installing", "reason": "the device accepted the command"}
    return None


def _still_running(report: Device | None, target: tuple[str, int]) -> dict[str, Any] | None:
    now_running = reported(report)
    if now_running == target:
        return None
    return _failed(
        f"the device reports {bundle_text(now_running)} after it ran {bundle_text(target)} "
        "(rolled back locally)"
    )


def _rollback_progress(row: RolloutDevice, sight: Sight) -> dict[str, Any] | None:
    for event in sight.answers:
        if event.kind == "rollback.failed":
            return _failed(f"rollback failed: {event.detail.get('reason', 'no reason given')}")
        if event.kind == "command.rejected":
            return _failed(f"rollback rejected: {event.detail.get('reason', 'no reason given')}")
    now_running = reported(sight.report)
    # Back means: what it ran before, or (when it ran nothing before) anything but the target.
    back = now_running == row.previous if row.previous else now_running != sight.target
    if back:
        return {"state": "rolled_back", "reason": f"the device reports {bundle_text(now_running)}"}
    assert row.rollback_sent_at is not None
    if sight.now - row.rollback_sent_at >= sight.timeout:
        return _failed(
            f"rollback not confirmed within {sight.timeout:g}s: the device still reports "
            f"{bundle_text(now_running)}"
        )
    return None


def _failed(reason: str) -> dict[str, Any]:
    return {"state": "failed", "reason": reason}
