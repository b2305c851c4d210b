"""What every benchmark in benches/ reports the same way: the machine it ran on and Markdown
tables."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from edgewise.environment import library_versions


def log(message: str) -> None:
    """Progress for people, on stderr, so stdout stays the report."""
    print(message, file=sys.stderr, flush=True)


def emit(report: dict[str, Any], table: str, as_json: bool) -> None:
    """The report on stdout: the Markdown table, or JSON (the table then goes to stderr)."""
    if as_json:
        log(table)
        print(json.dumps(report, indent=2))
    else:
        print(table)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def environment(libraries: Sequence[str]) -> dict[str, Any]:
    """Date, cores, load (the machines are shared), platform and the versions of `libraries`."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": cores(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(list(libraries)),
    }


def markdown_table(
    header: Sequence[str], lines: Sequence[Sequence[str]], right: set[int]
) -> list[str]:
    """A Markdown table with aligned columns; columns in `right` are right-aligned numbers."""
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def render(row: Sequence[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "| " + " | ".join(cells) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return [render(header), rule, *map(render, lines)]
