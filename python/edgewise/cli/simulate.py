"""`edgewise fleet simulate`: many simulated devices in one process (fleet/simulator)."""

from __future__ import annotations

import logging
import re
import signal
import threading
from pathlib import Path
from typing import Any

import click

from ..exceptions import ConfigError
from .output import echo_json

_DURATION = re.compile(r"(?P<amount>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h)?")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(click.ParamType):
    """Seconds, written ``500ms``, ``5s``, ``10m``, ``1h`` or a bare number of seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, float):
            return value
        match = _DURATION.fullmatch(str(value).strip())
        if match is None:
            self.fail(f"{value!r} is not a duration such as 5s, 10m or 1h", param, ctx)
        return float(match["amount"]) * _UNITS[match["unit"] or "s"]


def _labels(pairs: tuple[str, ...], option: str) -> dict[str, list[str]]:
    labels = {}
    for pair in pairs:
        name, equals, values = pair.partition("=")
        if not equals or not name or not values:
            raise click.BadParameter(f"{pair!r}: expected NAME=VALUE", param_hint=option)
        labels[name] = values.split(",")
    return labels


@click.command("simulate")
@click.option("--devices", "-n", type=click.IntRange(1), required=True, help="How many devices.")
@click.option(
    "--broker",
    "broker_url",
    default="mqtt://127.0.0.1:1883",
    show_default=True,
    help="mqtt://HOST[:PORT] or mqtts://HOST[:PORT].",
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA for mqtts://.")
@click.option(
    "--trust-root",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The pinned root.json every device starts from.",
)
@click.option(
    "--credentials",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File of device:password lines (see --write-credentials).",
)
@click.option(
    "--password-template",
    help="Passwords from a template, e.g. 'secret-{device}' (throwaway brokers only).",
)
@click.option(
    "--write-credentials",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Make random passwords for the devices, write FILE (device:password) and "
    "FILE.mosquitto (a Mosquitto password_file, hashed by mosquitto_passwd -U), and exit.",
)
@click.option("--prefix", default="sim-", show_default=True, help="Device ids are PREFIX0000...")
@click.option("--label", "labels", multiple=True, help="NAME=VALUE on every device (repeatable).")
@click.option(
    "--label-spread",
    "spreads",
    multiple=True,
    help="NAME=V1,V2,...: devices take the values in turn (repeatable).",
)
@click.option(
    "--telemetry-every",
    type=Duration(),
    default="60s",
    show_default=True,
    help="Telemetry window length.",
)
@click.option(
    "--rows-per-window",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Rows each device scores per window (drawn from --inputs).",
)
@click.option(
    "--inputs",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Parquet file of rows the devices score [default: each bundle's health sample, whose "
    "few hundred rows look drifted next to the training data at scale].",
)
@click.option(
    "--drift",
    "drifts",
    multiple=True,
    help="FRACTION:COLUMN:SHIFT: that fraction of devices adds SHIFT to input COLUMN.",
)
@click.option(
    "--offline",
    help="FRACTION:AFTER: that fraction of devices lose power after AFTER (e.g. 0.1:30s); the "
    "broker publishes their last will.",
)
@click.option(
    "--workers", type=click.IntRange(1), default=4, show_default=True, help="Install threads."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds drift and faults.")
@click.option("--duration", type=Duration(), help="Stop after this long (default: SIGTERM/^C).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def simulate_command(**options: Any) -> None:
    """Run N simulated devices in this process: real MQTT connections (each device its own
    user), operator-signed commands, chunked downloads, TUF verification, A/B installs with the
    health check, rollback, and telemetry with profiles. Prints a summary when stopped.

    \b
    Example:
      edgewise fleet simulate --devices 1000 --write-credentials sim.passwords
      edgewise fleet simulate --devices 1000 --credentials sim.passwords \\
          --trust-root root.json --label-spread site=berlin,paris,tokyo \\
          --telemetry-every 5s --drift 0.2:income:15000 --duration 10m
    """
    from ..fleet.simulator import Simulator
    from ..fleet.simulator.credentials import new_passwords, write_credentials, write_password_file

    write = options["write_credentials"]
    if write is not None:
        config = _config(options, password=lambda device: "", trust_root=b"")
        passwords = new_passwords(config.device_ids())
        write_credentials(passwords, write)
        hashed = write_password_file(passwords, write.with_name(write.name + ".mosquitto"))
        click.echo(f"wrote {write} and {hashed} for {len(passwords)} devices")
        return
    config = _config(options, password=None, trust_root=None)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Simulator(config) as simulator:
        if not options["as_json"]:
            click.echo(f"{config.devices} devices connecting to {options['broker_url']}", err=True)
        simulator.run(options["duration"], stop)
        summary = simulator.summary()
    if options["as_json"]:
        echo_json(summary)
        return
    running = ", ".join(f"{bundle} on {count}" for bundle, count in summary["running"].items())
    click.echo(
        f"{summary['online']} of {summary['devices']} devices online; installs "
        f"{summary['installs_done']} done, {summary['installs_failed']} failed; "
        f"{summary['rollbacks']} rollbacks; {summary['commands_rejected']} commands rejected; "
        f"{summary['bytes_received']} bytes received; {summary['telemetry_windows']} telemetry "
        f"windows; running {running}"
    )


def _config(options: dict[str, Any], password: Any, trust_root: bytes | None) -> Any:
    from ..fleet.simulator import Drift, FleetConfig, password_source
    from ..transport.broker_settings import parse_broker_url
    from ..transport.client import BrokerSettings, Tls

    host, port, tls = parse_broker_url(options["broker_url"], "--broker")
    if password is None:
        password = password_source(options["credentials"], options["password_template"])
    if trust_root is None:
        if options["trust_root"] is None:
            raise ConfigError("--trust-root is required: the root.json devices pin")
        trust_root = options["trust_root"].read_bytes()
    labels = {name: values[0] for name, values in _labels(options["labels"], "--label").items()}
    return FleetConfig(
        devices=options["devices"],
        broker=BrokerSettings(
            host=host, port=port, tls=Tls(ca_file=options["ca_file"]) if tls else None
        ),
        password=password,
        trust_root=trust_root,
        prefix=options["prefix"],
        labels=labels,
        spread=_labels(options["spreads"], "--label-spread"),
        telemetry_every=options["telemetry_every"],
        rows_per_window=options["rows_per_window"],
        inputs=options["inputs"],
        drift=tuple(Drift.parse(text) for text in options["drifts"]),
        offline=None if options["offline"] is None else _offline(options["offline"]),
        workers=options["workers"],
        seed=options["seed"],
    )


def _offline(text: str) -> Any:
    from ..fleet.simulator import Offline

    fraction, colon, after = text.partition(":")
    try:
        value = float(fraction)
        seconds = Duration().convert(after or "0s", None, None)
    except (ValueError, click.BadParameter):
        raise ConfigError(f"--offline {text!r}: expected FRACTION:AFTER, e.g. 0.1:30s") from None
    if not colon or not 0.0 <= value <= 1.0:
        raise ConfigError(f"--offline {text!r}: expected FRACTION:AFTER, e.g. 0.1:30s")
    return Offline(value, seconds)
