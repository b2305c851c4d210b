"""`edgewise control run`: the fleet's control plane as a long-running service."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..fleet.service import ControlService


@click.group("control")
def control_group() -> None:
    """The fleet's control plane: registry, rollouts, telemetry, alerts, HTTP API.

    \b
    Example:
      edgewise control run --config control.toml
    """


@control_group.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The control plane's TOML configuration (docs/operations.md lists every setting).",
)
@click.option(
    "--db", help="Store URL overriding the configuration: a SQLite file or postgresql://..."
)
def run(config_path: Path, db: str | None) -> None:
    """Run the control plane until SIGTERM or Ctrl-C.

    It connects to the broker as the control user, serves the TUF repository's metadata and
    bundles to devices, keeps the device registry from what devices report, runs rollouts,
    collects telemetry, evaluates alerts and serves the HTTP API. Once everything runs it
    prints one line on stderr: ``control plane ready: API http://HOST:PORT``.

    \b
    Example:
      EDGEWISE_CONTROL_BROKER_PASSWORD=... edgewise control run --config control.toml
    """
    from ..fleet.config import ControlConfig
    from ..fleet.service import ControlService

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = ControlConfig.load(config_path)
    if db is not None:
        config = dataclasses.replace(config, store=db)
    asyncio.run(_serve(ControlService(config)))


async def _serve(service: ControlService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await service.run(stop, lambda url: click.echo(f"control plane ready: API {url}", err=True))
