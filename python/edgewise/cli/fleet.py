"""`edgewise fleet ...`: the operator's view of the fleet, through the control plane's HTTP API."""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..exceptions import AuditError
from ..fleet.api_client import ApiClient
from .output import echo_json

F = Callable[..., Any]
DEFAULT_API = "http://127.0.0.1:8700"


def api_options(command: F) -> F:
    """--api, --token and --json, handing the command an `ApiClient` and `as_json`."""

    @click.option(
        "--api",
        default=DEFAULT_API,
        show_default=True,
        envvar="EDGEWISE_API",
        help="Control plane URL (env EDGEWISE_API).",
    )
    @click.option("--token", envvar="EDGEWISE_TOKEN", help="API bearer token (env EDGEWISE_TOKEN).")
    @click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
    @functools.wraps(command)
    def wrapper(api: str, token: str | None, **kwargs: Any) -> Any:
        return command(client=ApiClient(api, token), **kwargs)

    return wrapper


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    for row in [headers, *rows]:
        click.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) or "-"


def _when(timestamp: str | None) -> str:
    """An API timestamp to the second, for people (--json keeps the full precision)."""
    if timestamp is None:
        return "-"
    return datetime.fromisoformat(timestamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _bundle(device: dict[str, Any]) -> str:
    if device["bundle_name"] is None:
        return "-"
    return f"{device['bundle_name']}-{device['bundle_version']}"


@click.group("fleet")
def fleet_group() -> None:
    """The fleet as the control plane sees it: devices, labels, alerts and the audit log.

    \b
    Example:
      export EDGEWISE_API=http://control:8700 EDGEWISE_TOKEN=ewt_...
      edgewise fleet devices --select 'site=berlin'
    """


@fleet_group.command("devices")
@click.option(
    "--select", "selector", default="", help="Label selector, e.g. 'site=berlin,hw!=pi3'."
)
@api_options
def devices_command(client: ApiClient, as_json: bool, selector: str) -> None:
    """List devices, optionally only those whose labels match a selector.

    \b
    Example:
      edgewise fleet devices --select 'site in (berlin,paris),hw!=pi3'
    """
    devices = client.call("GET", "/v1/devices", select=selector)
    if as_json:
        echo_json(devices)
        return
    rows = [
        [
            d["id"],
            "online" if d["online"] else "offline",
            _bundle(d),
            _when(d["last_seen"]),
            _labels(d["labels"]),
        ]
        for d in devices
    ]
    _table(["DEVICE", "STATE", "BUNDLE", "LAST SEEN", "LABELS"], rows)


@fleet_group.command("device")
@click.argument("device_id")
@api_options
def device_command(client: ApiClient, as_json: bool, device_id: str) -> None:
    """Show one device: what it reported, its labels and its latest events.

    \b
    Example:
      edgewise fleet device berlin-017
    """
    device = client.call("GET", f"/v1/devices/{urllib.parse.quote(device_id, safe='')}")
    if as_json:
        echo_json(device)
        return
    click.echo(f"device     {device['id']}")
    click.echo(f"state      {'online' if device['online'] else 'offline'}")
    click.echo(f"last seen  {_when(device['last_seen'])}")
    click.echo(f"bundle     {_bundle(device)}")
    click.echo(f"labels     {_labels(device['labels'])}")
    click.echo(f"slots      {json.dumps(device['slots'], sort_keys=True)}")
    click.echo("events" if device["events"] else "events     none")
    kind_width = max((len(event["kind"]) for event in device["events"]), default=0)
    for event in device["events"]:
        detail = json.dumps(event["detail"], sort_keys=True)
        click.echo(f"  {_when(event['at'])}  {event['kind'].ljust(kind_width)}  {detail}")


def _label_changes(changes: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for change in changes:
        if change.endswith("-") and "=" not in change:
            to_remove.append(change[:-1])
        elif "=" in change:
            key, value = change.split("=", 1)
            to_set[key] = value
        else:
            raise click.BadParameter(f"{change!r}: use key=value to set, key- to remove")
    return to_set, to_remove


@fleet_group.command("label")
@click.argument("device_id")
@click.argument("changes", nargs=-1, required=True)
@click.option(
    "--keys",
    "key_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Sign the change with the operator key in this directory (recorded in the audit log).",
)
@api_options
def label_command(
    client: ApiClient, as_json: bool, device_id: str, changes: tuple[str, ...], key_dir: Path | None
) -> None:
    """Set (key=value) or remove (key-) labels of a device.

    \b
    Example:
      edgewise fleet label berlin-017 ring=canary hw- --keys keys/
    """
    to_set, to_remove = _label_changes(changes)
    body: dict[str, Any] = {"set": to_set, "remove": to_remove}
    if key_dir is not None:
        body["signature"] = _operator_signature(key_dir, "label", {"device": device_id, **body})
    device = client.call(
        "POST", f"/v1/devices/{urllib.parse.quote(device_id, safe='')}/labels", body
    )
    if as_json:
        echo_json(device)
        return
    click.echo(f"{device['id']}: {_labels(device['labels'])}")


def _operator_signature(key_dir: Path, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    from ..fleet.audit import operator_statement
    from ..trust.keys import PRIVATE_SUFFIX, load_signer, read_public_key

    signer = load_signer(
        key_dir / f"operator{PRIVATE_SUFFIX}", read_public_key(key_dir / "operator.pub")
    )
    return signer.sign(operator_statement(action, payload)).to_dict()


@fleet_group.command("alerts")
@click.option(
    "--state", type=click.Choice(["firing", "resolved"]), help="Only alerts in this state."
)
@api_options
def alerts_command(client: ApiClient, as_json: bool, state: str | None) -> None:
    """List alerts, newest first.

    \b
    Example:
      edgewise fleet alerts --state firing
    """
    alerts = client.call("GET", "/v1/alerts", state=state or "")
    if as_json:
        echo_json(alerts)
        return
    rows = [
        [
            a["state"],
            a["rule"],
            a["subject"],
            _when(a["fired_at"]),
            _when(a["resolved_at"]),
            json.dumps(a["detail"], sort_keys=True),
        ]
        for a in alerts
    ]
    _table(["STATE", "RULE", "SUBJECT", "FIRED", "RESOLVED", "DETAIL"], rows)


@fleet_group.group("audit")
def audit_group() -> None:
    """The hash-chained log of every operator action.

    \b
    Example:
      edgewise fleet audit verify
    """


@audit_group.command("verify")
@api_options
def audit_verify_command(client: ApiClient, as_json: bool) -> None:
    """Check the audit log's hash chain (and operator signatures, when the control plane has the
    trust root); exit 1 naming the first broken entry.

    \b
    Example:
      edgewise fleet audit verify --json
    """
    result = client.call("GET", "/v1/audit/verify")
    if as_json:
        echo_json(result)
    if not result["ok"]:
        raise AuditError(f"audit log broken at entry {result['broken_at']}: {result['reason']}")
    if not as_json:
        checked = "checked" if result["signatures_checked"] else "not checked (no trust root)"
        click.echo(
            f"audit log intact: {result['entries']} entries, {result['signed']} signed "
            f"(signatures {checked}); head {result['head']}"
        )


@fleet_group.group("token")
def token_group() -> None:
    """API tokens, made directly in the store (the first admin token has no one to ask).

    \b
    Example:
      edgewise fleet token create alice --role operator --db control.db
    """


@token_group.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    default="viewer",
    show_default=True,
    help="What the token may do.",
)
@click.option(
    "--db",
    default="control.db",
    show_default=True,
    envvar="EDGEWISE_DB",
    help="The store: a SQLite path or postgresql://... (env EDGEWISE_DB).",
)
def token_create_command(name: str, role: str, db: str) -> None:
    """Make a token and print it once; only its hash is stored.

    \b
    Example:
      edgewise fleet token create alice --role admin --db postgresql://control@db/fleet
    """
    from ..fleet.auth import Role, create_token
    from ..fleet.store import Store

    with Store.open(db) as store:
        click.echo(create_token(store, name, Role.parse(role)))


# At the end: the commands kept in their own modules build on this module's client and options.
from . import fleet_telemetry  # noqa: E402, F401  (drift, series attach themselves)
from .rollout import rollout_group  # noqa: E402
from .simulate import simulate_command  # noqa: E402

fleet_group.add_command(rollout_group)
fleet_group.add_command(simulate_command)
