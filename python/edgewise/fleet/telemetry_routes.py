"""HTTP routes of the collector: a bundle version's drift against its reference profile and
its telemetry time series, from the app's `state.collector`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from pydantic import BaseModel

from .api import Viewer
from .collector import Collector
from .durations import parse_duration
from .references import worst_metrics

BUNDLE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
BundleName = Annotated[str, PathParam(pattern=BUNDLE_NAME_PATTERN)]
Version = Annotated[int, PathParam(ge=0, le=2**62)]
Since = Annotated[
    str,
    Query(max_length=32, description="How far back: 90s, 10m, 1h, 2d, or seconds"),
]


class DriftOut(BaseModel):
    bundle: str
    version: int
    since: datetime
    drifted: bool
    worst: dict[str, float]
    report: dict[str, Any]


class SeriesPoint(BaseModel):
    bucket_start: datetime
    bucket_seconds: float
    windows: int
    requests: float
    rows: float
    errors: float
    error_rate: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_histogram: dict[str, float]
    corrupt_profiles: int


class SeriesOut(BaseModel):
    bundle: str
    version: int
    since: datetime
    points: list[SeriesPoint]


router = APIRouter(prefix="/v1/bundles", tags=["telemetry"])
_not_found: dict[int | str, dict[str, Any]] = {
    404: {"description": "No reference profile, or no telemetry in the period"}
}


def _collector(request: Request) -> Collector:
    collector: Collector = request.app.state.collector
    return collector


def _since(text: str) -> float:
    """The start of the period; a period longer than the epoch starts at the epoch."""
    try:
        return max(0.0, time.time() - parse_duration(text, "since"))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.get("/{name}/{version}/drift", response_model=DriftOut, responses=_not_found)
def bundle_drift(
    _: Viewer, request: Request, name: BundleName, version: Version, since: Since = "1h"
) -> DriftOut:
    """Drift of the bundle version's inputs, merged over the fleet's telemetry since then,
    from the bundle's reference profile: each column's metrics and verdict."""
    collector, start = _collector(request), _since(since)
    if collector.references.reference((name, version)) is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"bundle {name}:{version} has no reference profile here"
        )
    report = collector.drift((name, version), since=start)
    if report is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no telemetry of {name}:{version} in the last {since}"
        )
    return DriftOut(
        bundle=name,
        version=version,
        since=datetime.fromtimestamp(start, UTC),
        drifted=report.drifted,
        worst=worst_metrics(report),
        report=report.to_json(),
    )


@router.get("/{name}/{version}/series", response_model=SeriesOut)
def bundle_series(
    _: Viewer, request: Request, name: BundleName, version: Version, since: Since = "24h"
) -> SeriesOut:
    """The bundle version's telemetry per time bucket: windows, requests, rows, errors, the
    error rate and latency quantiles from the merged histogram."""
    collector, start = _collector(request), _since(since)
    points = [
        SeriesPoint(**{**p, "bucket_start": datetime.fromtimestamp(p["bucket_start"], UTC)})
        for p in collector.series((name, version), since=start)
    ]
    return SeriesOut(
        bundle=name, version=version, since=datetime.fromtimestamp(start, UTC), points=points
    )
