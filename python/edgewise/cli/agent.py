"""`edgewise agent run`: the edge agent, a long-lived process (docs/agent.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.group("agent")
def agent_group() -> None:
    """Run the edge agent that installs signed bundles and serves predictions on a device.

    \b
    Example:
      edgewise agent run --config /etc/edgewise/agent.toml
    """


@agent_group.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The agent's TOML configuration; EDGEWISE_AGENT_* variables override its settings.",
)
def run_command(config_path: Path) -> None:
    """Run until SIGTERM or SIGINT: install on signed commands, serve, report.

    \b
    Example:
      edgewise agent run --config /etc/edgewise/agent.toml
    """
    from ..agent import DEVICE_ENVIRONMENT

    # Before the Rust core and numpy load, which read them once: a variable already set wins.
    for name, value in DEVICE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)

    from ..agent import logs
    from ..agent.config import AgentConfig
    from ..agent.daemon import Agent

    config = AgentConfig.load(config_path)
    logs.configure()
    Agent(config).run()
