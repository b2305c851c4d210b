"""The `edgewise` command line: a thin layer over the library."""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from ..exceptions import EdgewiseError
from .agent import agent_group
from .bundle import bundle_group
from .compile import compile_command
from .demo import demo_command
from .profiles import drift_command, profile_command
from .schema import schema_group, validate_command
from .score import score_command
from .trust import keys_group, repo_group


class EdgewiseGroup(click.Group):
    """Turns `EdgewiseError` into a one-line `Error: ...` with exit code 1 (--debug: traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgewiseError as exc:
            if ctx.find_root().params.get("debug"):
                raise
            raise click.ClickException(str(exc)) from exc


@click.group(cls=EdgewiseGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgewise")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
def main(debug: bool) -> None:
    """edgewise: compile scikit-learn pipelines into verified bundles and score them fast.

    \b
    Example:
      edgewise compile model.joblib --train-data train.parquet --name churn --version 3
      edgewise score churn-3.ewb data/ -o scores/ --trust repo/ --root root.json
    """


main.add_command(compile_command)
main.add_command(score_command)
main.add_command(profile_command)
main.add_command(drift_command)
main.add_command(schema_group)
main.add_command(validate_command)
main.add_command(keys_group)
main.add_command(repo_group)
main.add_command(bundle_group)
main.add_command(demo_command)
main.add_command(agent_group)
