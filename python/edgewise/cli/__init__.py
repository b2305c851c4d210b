"""The `edgewise` command line: a thin layer over the library."""

from __future__ import annotations

import importlib
from typing import Any

import click

from ..exceptions import EdgewiseError

#: Each command and the module that defines it, imported only when the command is used: the
#: edge agent must not load rich, pandas or the compiler just to start (docs/agent.md).
COMMANDS = {
    "agent": "agent:agent_group",
    "broker": "broker:broker_group",
    "bundle": "bundle:bundle_group",
    "compile": "compile:compile_command",
    "control": "control:control_group",
    "demo": "demo:demo_command",
    "drift": "profiles:drift_command",
    "fleet": "fleet:fleet_group",
    "keys": "trust:keys_group",
    "profile": "profiles:profile_command",
    "repo": "trust:repo_group",
    "schema": "schema:schema_group",
    "score": "score:score_command",
    "validate": "schema:validate_command",
}


class EdgewiseGroup(click.Group):
    """Turns `EdgewiseError` into a one-line `Error: ...` with exit code 1 (--debug: traceback),
    and loads each command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name].partition(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgewiseError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            raise click.ClickException(str(exc)) from exc


@click.group(cls=EdgewiseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgewise", prog_name="edgewise")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """edgewise: compile scikit-learn pipelines into verified bundles and score them fast.

    \b
    Example:
      edgewise compile model.joblib --train-data train.parquet --name churn --version 3
      edgewise score churn-3.ewb data/ -o scores/ --trust repo/ --root root.json
    """
