"""The control plane's HTTP API: devices, labels, alerts and the audit log, with token auth.

`create_app(store)` builds the FastAPI application; its OpenAPI schema is at /openapi.json.
Route handlers are plain functions, so FastAPI runs them in its thread pool, where the blocking
store calls belong. Every request that changes something writes an audit entry.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field, StringConstraints
from securesystemslib.signer import Signature
from tuf.api.metadata import Metadata, Root

from .. import __version__
from ..exceptions import SelectorError, StoreError, TrustError
from ..trust.operators import verify_operator_signature
from .audit import AuditEntry, AuditLog, Verification, operator_statement
from .auth import Principal, Role, authenticate, create_token
from .collector import Collector as TelemetryCollector
from .references import ReferenceProfiles
from .selector import LABEL_PATTERN, Selector
from .store import Alert, Device, DeviceEvent, Store

DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
LabelText = Annotated[str, StringConstraints(pattern=LABEL_PATTERN, max_length=128)]


class SignatureIn(BaseModel):
    """An operator's signature over `operator_statement(action, payload)` (audit.py)."""

    keyid: str = Field(max_length=128)
    sig: str = Field(max_length=1024)


class LabelChange(BaseModel):
    set: dict[LabelText, LabelText] = Field(default_factory=dict)
    remove: list[LabelText] = Field(default_factory=list)
    signature: SignatureIn | None = None


class DeviceOut(BaseModel):
    id: str
    labels: dict[str, str]
    online: bool
    last_seen: datetime | None
    bundle_name: str | None
    bundle_version: int | None
    slots: dict[str, Any]

    @classmethod
    def of(cls, device: Device) -> DeviceOut:
        return cls.model_validate(device, from_attributes=True)


class EventOut(BaseModel):
    kind: str
    at: datetime
    detail: dict[str, Any]


class DeviceDetail(DeviceOut):
    events: list[EventOut]


class AlertOut(BaseModel):
    id: int
    rule: str
    subject: str
    dedup_key: str
    state: Literal["firing", "resolved"]
    detail: dict[str, Any]
    fired_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class VerificationOut(BaseModel):
    ok: bool
    entries: int
    signed: int
    signatures_checked: bool
    head: str
    broken_at: int | None
    reason: str | None


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    role: Literal["viewer", "operator", "admin"]


class TokenCreated(BaseModel):
    name: str
    role: str
    token: str = Field(description="Shown once; only its hash is stored.")


class Health(BaseModel):
    status: str
    store: str
    version: str


DeviceId = Annotated[str, PathParam(pattern=DEVICE_ID_PATTERN)]
_bearer = HTTPBearer(auto_error=False)


def _require(role: Role) -> Callable[..., Principal]:
    """A dependency that lets a request through only with a known token of `role` or above."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        store: Store = request.app.state.store
        principal = None if credentials is None else authenticate(store, credentials.credentials)
        if principal is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is needed (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role < role:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token {principal.name!r} has role {principal.role.label}; "
                f"this needs {role.label}",
            )
        return principal

    return check


# Module-level, so that FastAPI can resolve these (string) annotations of the route functions.
Viewer = Annotated[Principal, Depends(_require(Role.VIEWER))]
Operator = Annotated[Principal, Depends(_require(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(_require(Role.ADMIN))]


def create_app(
    store: Store,
    *,
    root: Root | None = None,
    known_bundle: Callable[[str, int], bool] | None = None,
    collector: TelemetryCollector | None = None,
) -> FastAPI:
    """The API over `store`. With `root`, operator signatures are checked against its operator
    keys, both on the requests that carry one and by /v1/audit/verify. `known_bundle(name,
    version)` says whether a bundle may be rolled out (the repository's targets,
    rollouts/catalogue.py); without it every rollout is refused. With `collector`, the bundles'
    drift is measured against the reference profiles it knows."""
    from .rollouts.metrics import RolloutCollector
    from .rollouts.routes import rollout_router  # it imports this module's dependencies
    from .telemetry_routes import router as telemetry_router  # it imports this module

    audit = AuditLog(store)
    registry = CollectorRegistry()
    registry.register(_StoreCollector(store))
    registry.register(RolloutCollector(store))
    requests = Counter(
        "edgewise_http_requests",
        "HTTP requests served, by method, route and status code",
        ["method", "route", "status"],
        registry=registry,
    )
    app = FastAPI(
        title="edgewise control plane",
        version=__version__,
        description="Devices, labels, rollouts, alerts and the audit log of an edgewise fleet.",
    )
    app.state.store = store
    # What /metrics serves: the service registers its own collectors here (IngestMetrics).
    app.state.metrics = registry
    # Without the service's collector, one over the store: the series still answer.
    app.state.collector = collector or TelemetryCollector(store, ReferenceProfiles(None))
    app.add_middleware(_RequestCounter, counter=requests)
    not_found: dict[int | str, dict[str, Any]] = {404: {"description": "No such device"}}

    def checked_signature(
        action: str, payload: dict[str, Any], signature: SignatureIn | None
    ) -> Signature | None:
        """The request's operator signature, refused now if it does not verify: recorded, it
        would make every later verification of the audit log fail."""
        if signature is None:
            return None
        converted = Signature(signature.keyid, signature.sig)
        if root is not None:
            try:
                verify_operator_signature(root, operator_statement(action, payload), converted)
            except TrustError as exc:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return converted

    @app.exception_handler(StoreError)
    def store_unavailable(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": f"store: {exc}"}, status.HTTP_503_SERVICE_UNAVAILABLE)

    @app.get("/healthz", response_model=Health, tags=["service"])
    def healthz() -> Health:
        store.count_devices()  # a store that cannot answer makes this a 503
        return Health(status="ok", store=store.backend, version=__version__)

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/devices", response_model=list[DeviceOut], tags=["devices"])
    def list_devices(
        _: Viewer,
        select: Annotated[
            str, Query(max_length=1000, description="Label selector: site=berlin,hw!=pi3")
        ] = "",
    ) -> list[DeviceOut]:
        try:
            selector = Selector.parse(select)
        except SelectorError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        return [DeviceOut.of(device) for device in store.devices(selector)]

    @app.get(
        "/v1/devices/{device_id}",
        response_model=DeviceDetail,
        tags=["devices"],
        responses=not_found,
    )
    def get_device(
        _: Viewer, device_id: DeviceId, events: Annotated[int, Query(ge=0, le=1000)] = 20
    ) -> DeviceDetail:
        device = _known(store.device(device_id), device_id)
        recent = [_event_out(event) for event in store.events(device_id, events)]
        return DeviceDetail(**DeviceOut.of(device).model_dump(), events=recent)

    @app.post(
        "/v1/devices/{device_id}/labels",
        response_model=DeviceOut,
        tags=["devices"],
        responses=not_found,
    )
    def label_device(principal: Operator, device_id: DeviceId, change: LabelChange) -> DeviceOut:
        changes: dict[str, str | None] = {key: None for key in change.remove}
        changes.update(change.set)
        payload = {"device": device_id, "set": change.set, "remove": change.remove}
        signature = checked_signature("label", payload, change.signature)
        entry = audit.prepare(principal.name, "label", payload, signature)
        return DeviceOut.of(_known(store.update_labels(device_id, changes, entry), device_id))

    @app.get("/v1/alerts", response_model=list[AlertOut], tags=["alerts"])
    def list_alerts(
        _: Viewer, state: Literal["firing", "resolved"] | None = None
    ) -> list[AlertOut]:
        return [_alert_out(alert) for alert in store.alerts(state)]

    @app.get("/v1/audit", response_model=list[AuditEntry], tags=["audit"])
    def list_audit(
        _: Viewer,
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditEntry]:
        return audit.entries(after, limit)

    @app.get("/v1/audit/verify", response_model=VerificationOut, tags=["audit"])
    def verify_audit(_: Viewer) -> VerificationOut:
        return _verification_out(audit.verify(root), signatures_checked=root is not None)

    @app.post(
        "/v1/tokens",
        response_model=TokenCreated,
        status_code=status.HTTP_201_CREATED,
        tags=["tokens"],
        responses={409: {"description": "A token of that name exists"}},
    )
    def make_token(principal: Admin, request: TokenRequest) -> TokenCreated:
        if store.token_named(request.name) is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"token {request.name!r} exists")
        entry = audit.prepare(
            principal.name, "token.create", {"name": request.name, "role": request.role}
        )
        token = create_token(store, request.name, Role.parse(request.role), entry)
        return TokenCreated(name=request.name, role=request.role, token=token)

    app.include_router(
        rollout_router(store, known_bundle or _no_bundle_is_known, checked_signature)
    )
    app.include_router(telemetry_router)
    return app


def app_from_environment() -> FastAPI:
    """For `uvicorn --factory`: the store at $EDGEWISE_DB (default control.db), the operator
    keys of the trust root at $EDGEWISE_ROOT (a root.json) when set, and, from the TUF
    repository at $EDGEWISE_REPOSITORY when set, the bundles that may be rolled out and their
    reference profiles."""
    from .rollouts.catalogue import repository_catalogue

    store = Store.open(os.environ.get("EDGEWISE_DB", "control.db"))
    root_path = os.environ.get("EDGEWISE_ROOT")
    root = None if root_path is None else Metadata[Root].from_file(root_path).signed
    repository = os.environ.get("EDGEWISE_REPOSITORY")
    known = None if repository is None else repository_catalogue(Path(repository))
    collector = TelemetryCollector(store, ReferenceProfiles(repository))
    return create_app(store, root=root, known_bundle=known, collector=collector)


def _no_bundle_is_known(name: str, version: int) -> bool:
    return False


def _known(device: Device | None, device_id: str) -> Device:
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id!r}")
    return device


def _event_out(event: DeviceEvent) -> EventOut:
    return EventOut.model_validate(event, from_attributes=True)


def _alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


def _verification_out(result: Verification, *, signatures_checked: bool) -> VerificationOut:
    return VerificationOut(
        ok=result.ok,
        entries=result.entries,
        signed=result.signed,
        signatures_checked=signatures_checked,
        head=result.head,
        broken_at=result.broken_at,
        reason=result.reason,
    )


class _StoreCollector(Collector):
    """Fleet gauges read from the store at each scrape, so every replica reports the same."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        devices = GaugeMetricFamily(
            "edgewise_devices", "Registered devices by connection state", labels=["state"]
        )
        for state, count in self._store.count_devices().items():
            devices.add_metric([state], count)
        yield devices
        yield CounterMetricFamily(
            "edgewise_device_events", "Device events stored", value=self._store.count_events()
        )


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _RequestCounter:
    """ASGI middleware counting requests by route template (not raw path: bounded labels)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], counter: Counter):
        self._app = app
        self._counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status_code = 500  # what the client sees if the app fails before answering

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self._counter.labels(scope["method"], template, str(status_code)).inc()
