"""`edgewise fleet drift` and `edgewise fleet series`: a bundle version's drift against its
reference profile and its telemetry over time, through the control plane's HTTP API."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

import click

from ..fleet.api_client import ApiClient
from .fleet import F, _table, _when, api_options, fleet_group
from .output import echo_json

_BUNDLE = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]{0,127}):([0-9]{1,18})")


def _bundle_path(bundle: str, what: str) -> str:
    match = _BUNDLE.fullmatch(bundle)
    if match is None:
        raise click.BadParameter(
            f"{bundle!r}: expected NAME:VERSION, e.g. credit:3", param_hint="BUNDLE"
        )
    name, version = match.groups()
    return f"/v1/bundles/{urllib.parse.quote(name)}/{int(version)}/{what}"


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _bundle_command(name: str, since: str) -> Callable[[F], click.Command]:
    """A `fleet` command about one bundle version: BUNDLE, --since, --api/--token/--json."""

    def decorate(command: F) -> click.Command:
        command = click.option(
            "--since", default=since, show_default=True, help="How far back: 90s, 10m, 1h, 2d."
        )(api_options(command))
        return fleet_group.command(name)(click.argument("bundle")(command))

    return decorate


@_bundle_command("drift", since="1h")
def drift_command(client: ApiClient, as_json: bool, bundle: str, since: str) -> None:
    """Drift of a bundle version's inputs across the fleet, from its reference profile.

    \b
    Example:
      edgewise fleet drift credit:3 --since 6h
    """
    answer = client.call("GET", _bundle_path(bundle, "drift"), since=since)
    if as_json:
        echo_json(answer)
        return
    report = answer["report"]
    verdict = "dataset DRIFTED" if answer["drifted"] else "no dataset drift"
    click.echo(
        f"{answer['bundle']}:{answer['version']} since {_when(answer['since'])}: {verdict}: "
        f"{report['drifted_columns']} of {report['columns_compared']} columns drifted "
        f"({report['current']['rows']} rows)"
    )
    rows = [
        [
            column["name"],
            column["method"],
            _number(column["score"]),
            _number(column["threshold"]),
            _number(column["metrics"].get("psi")),
            "yes" if column["drifted"] else "no",
        ]
        for column in report["columns"]
    ]
    _table(["COLUMN", "METHOD", "SCORE", "THRESHOLD", "PSI", "DRIFTED"], rows)


@_bundle_command("series", since="24h")
def series_command(client: ApiClient, as_json: bool, bundle: str, since: str) -> None:
    """A bundle version's telemetry per time bucket: requests, errors, latency.

    \b
    Example:
      edgewise fleet series credit:3 --since 2h --json
    """
    answer = client.call("GET", _bundle_path(bundle, "series"), since=since)
    if as_json:
        echo_json(answer)
        return
    rows = [
        [
            _when(point["bucket_start"]),
            str(point["windows"]),
            f"{point['requests']:.0f}",
            f"{point['rows']:.0f}",
            f"{100 * point['error_rate']:.2f}%",
            _number(point["latency_p50_ms"]),
            _number(point["latency_p99_ms"]),
        ]
        for point in answer["points"]
    ]
    _table(["BUCKET", "WINDOWS", "REQUESTS", "ROWS", "ERRORS", "P50 MS", "P99 MS"], rows)
