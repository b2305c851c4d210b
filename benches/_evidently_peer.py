"""Evidently as a drift-check peer, run by profile_vs_peers.py in its own virtual environment.

Evidently 0.7.23 fails on pandas 3, so profile_vs_peers.py creates an environment with
pandas<2.3 under bench-data/venvs/evidently and runs this file with it. Timed in this process
after the imports, from reading the Parquet files, as a user would run it: `pd.read_parquet`
of both files (the first `--sample` rows of each if given), then
`Report([DataDriftPreset()]).run(current, reference)` and reading the per-column results from
the snapshot. Evidently keeps no profile: it compares the raw data each time. With more than
1,000 rows its defaults are the normed Wasserstein distance (numeric columns) and the
Jensen-Shannon distance (categorical ones), each flagging a column at 0.1 or above.

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

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry

started = time.perf_counter()
import pandas as pd  # noqa: E402
from evidently import Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - started


def read(path: str, sample: int | None) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    return frame if sample is None else frame.head(sample)


def drift(reference: str, current: str, sample: int | None) -> dict[str, Any]:
    started = time.perf_counter()
    reference_frame = read(reference, sample)
    current_frame = read(current, sample)
    compared = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current_frame, reference_frame)
    columns = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if "column" not in config:
            continue  # DriftedColumnsCount
        method, threshold, score = config["method"], config["threshold"], metric["value"]
        # p-value tests flag below the threshold, distances at or above it.
        drifted = score < threshold if "p_value" in method else score >= threshold
        columns[config["column"]] = {
            "method": method,
            "score": score,
            "threshold": threshold,
            "drifted": bool(drifted),
        }
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "rows": len(reference_frame) + len(current_frame),
        "stages": {"read": compared - started, "compare": finished - compared},
        "columns": columns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True)
    parser.add_argument("--current", required=True)
    parser.add_argument("--sample", type=int, help="use only the first SAMPLE rows of each file")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    runs = [drift(args.reference, args.current, args.sample) for _ in range(args.repeat)]
    result = {
        "tool": "evidently",
        "versions": {name: version(name) for name in ("evidently", "numpy", "pandas", "pyarrow")},
        "python": sys.version.split()[0],
        "import_seconds": IMPORT_SECONDS,
        "drift": {
            **min(runs, key=lambda r: r["seconds"]),
            "all_seconds": [r["seconds"] for r in runs],
        },
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
