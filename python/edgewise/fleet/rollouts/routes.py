"""The rollouts' HTTP API: start (operator), list and status (viewer), pause, resume, abort.

The routes only change what the store holds (each change audited in its transaction); the
engine's next tick acts on it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from securesystemslib.signer import Signature

from ...exceptions import RolloutError, SelectorError
from ..api import DEVICE_ID_PATTERN, Operator, SignatureIn, Viewer
from ..selector import Selector
from ..store import Rollout, RolloutDevice, RolloutWave, Store
from .actions import abort_rollout, pause_rollout, resume_rollout, start_rollout
from .policy import RolloutPolicy

CheckSignature = Callable[[str, dict[str, Any], SignatureIn | None], Signature | None]
RolloutState = Literal["running", "paused", "halted", "aborted", "completed"]
DeviceState = Literal[
    "pending", "sent", "installing", "succeeded", "failed", "skipped", "rolling_back", "rolled_back"
]
Option = Annotated[str, Field(max_length=200)]


class RolloutRequest(BaseModel):
    """A rollout as `edgewise fleet rollout start` asks for it; the policy fields take the
    command line's words (``1%,10%,100%``, ``10m``, ``psi<0.2``, ``100/min``)."""

    bundle_name: str = Field(pattern=DEVICE_ID_PATTERN)
    bundle_version: int = Field(ge=0, le=2**31 - 1)
    selector: str = Field(default="", max_length=1000, description="Label selector: site=berlin")
    waves: Option = "1%,10%,50%,100%"
    max_failure_rate: Option = "5%"
    dwell: Option = "10m"
    install_timeout: Option = "30m"
    drift_gates: list[Option] = Field(default_factory=list, max_length=8)
    error_gate: Option | None = None
    rate: Option | None = None
    auto_rollback: bool = False
    signature: SignatureIn | None = None


class ActionRequest(BaseModel):
    signature: SignatureIn | None = None


class AbortRequest(ActionRequest):
    rollback: bool = Field(
        default=False, description="Send every device that installed the bundle back"
    )


class RolloutOut(BaseModel):
    id: int
    bundle_name: str
    bundle_version: int
    selector: str
    state: RolloutState
    reason: str | None
    wave: int = Field(description="The wave in progress (or where it stopped), from 1")
    wave_count: int
    policy: dict[str, Any]
    device_states: dict[str, int] = Field(description="How many devices are in each state")
    created_by: str
    created_at: datetime
    updated_at: datetime


class WaveOut(BaseModel):
    wave: int
    size: str
    state: Literal["pending", "running", "succeeded", "halted", "aborted"]
    reason: str | None
    device_states: dict[str, int]
    started_at: datetime | None
    finished_at: datetime | None


class RolloutDeviceOut(BaseModel):
    device_id: str
    wave: int
    state: DeviceState
    reason: str | None
    sent_at: datetime | None
    updated_at: datetime


class RolloutStatus(RolloutOut):
    waves: list[WaveOut]
    devices: list[RolloutDeviceOut]


RolloutId = Annotated[int, PathParam(ge=1, le=2**62)]
_NOT_POLICY = {"bundle_name", "bundle_version", "selector", "signature"}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such rollout"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    409: {"description": "The rollout's state does not allow this"},
}


def rollout_router(
    store: Store, known_bundle: Callable[[str, int], bool], check_signature: CheckSignature
) -> APIRouter:
    router = APIRouter(prefix="/v1/rollouts", tags=["rollouts"])

    @router.post(
        "",
        response_model=RolloutStatus,
        status_code=status.HTTP_201_CREATED,
        responses={404: {"description": "The bundle is not a target of the repository"}},
    )
    def start(principal: Operator, request: RolloutRequest) -> RolloutStatus:
        """Start a rollout: its devices are placed in waves now, the first wave starts."""
        statement = request.model_dump(mode="json", exclude={"signature"}, exclude_unset=True)
        try:
            selector = Selector.parse(request.selector)
            policy = RolloutPolicy.parse(
                **request.model_dump(exclude=_NOT_POLICY)  # the rest is the policy's words
            )
        except (SelectorError, RolloutError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        bundle = (request.bundle_name, request.bundle_version)
        if not known_bundle(*bundle):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"bundle {bundle[0]}-{bundle[1]} is not a target of the repository",
            )
        signature = check_signature("rollout.start", statement, request.signature)
        try:
            rollout = start_rollout(
                store,
                bundle,
                selector,
                policy,
                actor=principal.name,
                statement=statement,
                signature=signature,
                now=time.time(),
            )
        except RolloutError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return _status(store, rollout)

    @router.get("", response_model=list[RolloutOut])
    def list_rollouts(_: Viewer) -> list[RolloutOut]:
        """Every rollout, newest first, with how many devices are in each state."""
        counts = store.rollout_device_counts()
        return [_summary(rollout, counts.get(rollout.id, {})) for rollout in store.rollouts()]

    @router.get("/{rollout_id}", response_model=RolloutStatus, responses=_NOT_FOUND)
    def rollout_status(
        _: Viewer,
        rollout_id: RolloutId,
        state: Annotated[
            DeviceState | None, Query(description="Only devices in this state")
        ] = None,
    ) -> RolloutStatus:
        """A rollout's waves and devices, each with its state and the reason for it."""
        return _status(store, _known(store, rollout_id), state)

    def operator_action(action: str, change: Callable[..., Rollout]) -> Callable[..., RolloutOut]:
        def route(
            principal: Operator,
            rollout_id: RolloutId,
            request: Annotated[ActionRequest | None, Body()] = None,
        ) -> RolloutOut:
            signature = check_signature(
                f"rollout.{action}", {"rollout": rollout_id}, (request or ActionRequest()).signature
            )
            return _change(
                store,
                rollout_id,
                lambda: change(
                    store, rollout_id, actor=principal.name, signature=signature, now=time.time()
                ),
            )

        return route

    for action, change, summary in (
        ("pause", pause_rollout, "Pause: no new commands; those out are followed to their end"),
        ("resume", resume_rollout, "Resume a paused rollout"),
    ):
        router.add_api_route(
            f"/{{rollout_id}}/{action}",
            operator_action(action, change),
            methods=["POST"],
            response_model=RolloutOut,
            responses=_CONFLICT,
            summary=summary,
            name=f"{action}_rollout",
        )

    @router.post("/{rollout_id}/abort", response_model=RolloutOut, responses=_CONFLICT)
    def abort(
        principal: Operator,
        rollout_id: RolloutId,
        request: Annotated[AbortRequest | None, Body()] = None,
    ) -> RolloutOut:
        """Stop for good; with `rollback`, devices that installed the bundle go back."""
        request = request or AbortRequest()
        statement = {"rollout": rollout_id, "rollback": request.rollback}
        signature = check_signature("rollout.abort", statement, request.signature)
        return _change(
            store,
            rollout_id,
            lambda: abort_rollout(
                store,
                rollout_id,
                rollback=request.rollback,
                actor=principal.name,
                signature=signature,
                now=time.time(),
            ),
        )

    return router


def _known(store: Store, rollout_id: int) -> Rollout:
    rollout = store.rollout(rollout_id)
    if rollout is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rollout {rollout_id}")
    return rollout


def _change(store: Store, rollout_id: int, change: Callable[[], Rollout]) -> RolloutOut:
    _known(store, rollout_id)
    try:
        rollout = change()
    except RolloutError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return _summary(rollout, store.rollout_device_counts(rollout_id).get(rollout_id, {}))


def _summary(rollout: Rollout, counts: dict[str, int]) -> RolloutOut:
    policy = RolloutPolicy.from_json(rollout.policy)
    return RolloutOut.model_validate(
        {
            **vars(rollout),
            "wave": rollout.wave + 1,
            "wave_count": len(policy.waves),
            "policy": policy.describe(),
            "device_states": counts,
        }
    )


def _status(store: Store, rollout: Rollout, only: str | None = None) -> RolloutStatus:
    devices = store.rollout_devices(rollout.id)
    summary = _summary(rollout, dict(Counter(device.state for device in devices)))
    return RolloutStatus(
        **summary.model_dump(),
        waves=[_wave_out(wave, devices) for wave in store.rollout_waves(rollout.id)],
        devices=[_device_out(device) for device in devices if only in (None, device.state)],
    )


def _wave_out(wave: RolloutWave, devices: Sequence[RolloutDevice]) -> WaveOut:
    counts = Counter(device.state for device in devices if device.wave == wave.wave)
    return WaveOut.model_validate(
        {**vars(wave), "wave": wave.wave + 1, "device_states": dict(counts)}
    )


def _device_out(device: RolloutDevice) -> RolloutDeviceOut:
    return RolloutDeviceOut.model_validate({**vars(device), "wave": device.wave + 1})
