"""`python -m edgewise`: the same as the `edgewise` command."""

from edgewise.cli import main

main(prog_name="edgewise")
