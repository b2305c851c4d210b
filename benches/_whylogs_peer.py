"""whylogs as a drift-check peer, run by profile_vs_peers.py in its own virtual environment.

whylogs 1.6.4 needs numpy<2 (and so pyarrow<19) and its drift helpers import IPython, so it
cannot share the project's environment; profile_vs_peers.py creates one under
bench-data/venvs/whylogs and runs this file with it. Everything is timed in this process after
the imports, from reading the Parquet files, as a user would run it:

* drift: `pd.read_parquet` + `why.log(df).view()` for the reference and the current file, then
  `calculate_drift_scores(..., with_thresholds=True)` (whylogs' default: KS test on the KLL
  sketches of numeric columns, chi-square on the frequent items of the others); a column is
  flagged when whylogs puts it in the DRIFT category;
* large (optional): `pd.read_parquet` + `why.log(df).view()` of one larger file.

It prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib.metadata import version
from typing import Any

os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")

started = time.perf_counter()
import pandas as pd  # noqa: E402
import whylogs as why  # noqa: E402
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - started


def profile(path: str) -> tuple[Any, int, float, float]:
    """The profile view of one Parquet file, its rows, and the read and profile seconds."""
    started = time.perf_counter()
    frame = pd.read_parquet(path)
    read = time.perf_counter() - started
    view = why.log(frame).view()
    return view, len(frame), read, time.perf_counter() - started - read


def drift(reference: str, current: str) -> dict[str, Any]:
    started = time.perf_counter()
    reference_view, reference_rows, read_1, profile_1 = profile(reference)
    current_view, current_rows, read_2, profile_2 = profile(current)
    compared = time.perf_counter()
    scores = calculate_drift_scores(
        target_view=current_view, reference_view=reference_view, with_thresholds=True
    )
    finished = time.perf_counter()
    columns = {}
    for name, score in scores.items():
        if score is None:
            columns[name] = {"method": None, "score": None, "drifted": False, "category": None}
            continue
        columns[name] = {
            "method": score["algorithm"],
            "score": score["pvalue"],
            "statistic": score["statistic"],
            "drifted": score["drift_category"] == "DRIFT",
            "category": score["drift_category"],
        }
    return {
        "seconds": finished - started,
        "rows": reference_rows + current_rows,
        "stages": {
            "read": read_1 + read_2,
            "profile": profile_1 + profile_2,
            "compare": finished - compared,
        },
        "profile_bytes": len(reference_view.serialize()),
        "columns": columns,
    }


def large(path: str) -> dict[str, Any]:
    started = time.perf_counter()
    _, rows, read, profiled = profile(path)
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "stages": {"read": read, "profile": profiled},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--large", help="a larger Parquet file to time profiling alone on")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs = [drift(args.reference, args.current) for _ in range(args.repeat)]
    result: dict[str, Any] = {
        "tool": "whylogs",
        "versions": {name: version(name) for name in ("whylogs", "numpy", "pandas", "pyarrow")},
        "python": sys.version.split()[0],
        "import_seconds": IMPORT_SECONDS,
        "drift": {
            **min(runs, key=lambda r: r["seconds"]),
            "all_seconds": [r["seconds"] for r in runs],
            # The KLL sketches compact at random: the flags can differ between runs.
            "flagged_runs": [
                sorted(name for name, c in r["columns"].items() if c["drifted"]) for r in runs
            ],
        },
    }
    if args.large:
        large_runs = [large(args.large) for _ in range(args.repeat)]
        result["large"] = {
            **min(large_runs, key=lambda r: r["seconds"]),
            "all_seconds": [r["seconds"] for r in large_runs],
        }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
