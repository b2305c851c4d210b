"""Profiling and drift checks of edgewise against the tools people use for them today.

The data is `edgewise.datasets.drift_frames`: a reference and a current dataset with the same
15 columns (numeric, counts, a flag, categoricals, a timestamp), 5 of which truly shift by
modest amounts and 10 of which are independent draws from the same distribution. Both are
written once to Parquet, with a larger single file of reference data for the profiling
throughput, and every tool reads the same files in the same run:

* edgewise: `edgewise.profile` of the reference file, `edgewise.profile` of the current file,
  then `edgewise.drift` of the two profiles, in this process (`threads=None`: one thread per
  core); separately, `edgewise.profile` of the large file with one thread per core and with
  one thread, and `Profile.to_bytes()` (its time and size);
* numpy+scipy: what a user writes by hand: `pq.read_table` of both files, then per numeric
  column PSI over 10 reference-quantile bins and `scipy.stats.ks_2samp`, per categorical
  column (strings, booleans) PSI and `scipy.stats.chi2_contingency` over the category counts
  (`pyarrow.compute.value_counts`). It flags a column either when the test's p-value is below
  0.05 or, the usual rule of thumb, when PSI is 0.1 or more: both rules are reported;
* whylogs 1.6.4: `pd.read_parquet` + `why.log(df).view()` of each file, then its
  `calculate_drift_scores` (KS test on KLL sketches, chi-square on frequent items; a column in
  the DRIFT category is flagged); `why.log` of the large file as well (`--no-large-peers`
  skips it);
* Evidently 0.7.23 (with `--evidently`): `pd.read_parquet` of both files and
  `Report([DataDriftPreset()]).run(current, reference)` (normed Wasserstein distance and
  Jensen-Shannon distance, threshold 0.1), on the first `--evidently-sample` rows of each
  file if given.

whylogs needs numpy<2 and Evidently pandas<2.3, so each runs in its own virtual environment,
created on first use under DATA_DIR/venvs/ with pinned versions, through benches/_whylogs_peer.py
and benches/_evidently_peer.py, which time themselves after their imports from reading the
Parquet files and print JSON. The peers run as they come (Python, mostly on one core); edgewise
uses every core, and its one-thread figure is shown too.

For each tool the output lists the columns it flagged and counts the shifted and the
unchanged ones among them: a monitor that flags unchanged columns at this size raises false
alarms in production; one that misses modest shifts stays quiet when it should not.

Run it directly:

    .venv/bin/python benches/profile_vs_peers.py                  # 1M + 1M rows, 5M large
    .venv/bin/python benches/profile_vs_peers.py --evidently --repeat 3
    .venv/bin/python benches/profile_vs_peers.py --rows 200000 --large-rows 1000000 --json
    .venv/bin/python benches/profile_vs_peers.py --tools numpy+scipy whylogs --no-large-peers

Generated data and the peers' environments go to --data-dir (default ./bench-data, ignored by
git) and are reused by later runs with the same row counts and pins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from peers import Peer
from report import cores, emit, environment, log, markdown_table
from scipy import stats

import edgewise
from edgewise.datasets import drift_frames

TOOLS = ("edgewise", "numpy+scipy", "whylogs", "evidently")
DATA_SEED = 0
LARGE_SEED = 1000  # chunk i of the large file is the reference side of drift_frames(seed=1000+i)
LARGE_CHUNK_ROWS = 1 << 20
ROW_GROUP_ROWS = 128 * 1024  # as score_vs_peers.py writes its inputs
P_VALUE = 0.05  # numpy+scipy: a test below this flags the column
PSI_THRESHOLD = 0.1  # numpy+scipy: the rule of thumb (0.1 moderate, 0.25 large)
PSI_BINS = 10
PSI_FLOOR = 1e-4  # share given to an empty bin or category, so that PSI stays finite
LIBRARIES = ("edgewise", "numpy", "scipy", "pandas", "pyarrow")


# Pins found to install and run together on this machine (Python 3.11): whylogs fails on
# numpy 2, numpy<2 needs pyarrow<19, its drift helpers import IPython; Evidently fails on
# pandas 3.
PEERS = {
    "whylogs": Peer(
        "whylogs",
        "_whylogs_peer.py",
        (
            "whylogs==1.6.4",
            "numpy==1.26.4",
            "pandas==2.2.3",
            "pyarrow==18.1.0",
            "scipy==1.17.1",
            "ipython==9.18.1",
        ),
        (("WHYLOGS_NO_ANALYTICS", "True"),),
    ),
    "evidently": Peer(
        "evidently",
        "_evidently_peer.py",
        ("evidently==0.7.23", "numpy==2.4.6", "pandas==2.2.3", "pyarrow==18.1.0"),
        (("DO_NOT_TRACK", "1"),),
    ),
}


# --- data ------------------------------------------------------------------------------------


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """The frame as plain Arrow: `string` rather than pandas 3's `large_string`, and no pandas
    metadata (the peers read the files with pandas 2)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema(
        [f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]
    )
    return table.cast(schema).replace_schema_metadata(None)


def parquet_rows(path: Path) -> int | None:
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowInvalid):
        return None


def generate(directory: Path, write: Any) -> None:
    """Run `write(partial_directory)`, then move the result into place."""
    shutil.rmtree(directory, ignore_errors=True)
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    write(partial)
    partial.rename(directory)
    log(f"  generated in {time.perf_counter() - started:.1f} s")


def ensure_drift_data(data_dir: Path, rows: int) -> tuple[Path, Path, dict[str, str]]:
    """reference.parquet and current.parquet of `rows` rows each, and the shifted columns."""
    directory = data_dir / f"drift-rows-{rows}-seed-{DATA_SEED}"
    reference, current = directory / "reference.parquet", directory / "current.parquet"
    _, _, shifts = drift_frames(0, seed=DATA_SEED)
    if parquet_rows(reference) == rows and parquet_rows(current) == rows:
        log(f"reusing {rows:,} + {rows:,} rows under {directory}")
        return reference, current, shifts
    log(f"generating {rows:,} reference and {rows:,} current rows under {directory}")

    def write(partial: Path) -> None:
        frames = drift_frames(rows, seed=DATA_SEED)
        for name, frame in zip(("reference", "current"), frames[:2], strict=True):
            pq.write_table(
                to_arrow(frame), partial / f"{name}.parquet", row_group_size=ROW_GROUP_ROWS
            )

    generate(directory, write)
    return reference, current, shifts


def ensure_large_data(data_dir: Path, rows: int) -> Path:
    """One Parquet file of `rows` rows of reference data, generated in chunks."""
    directory = data_dir / f"drift-large-rows-{rows}"
    path = directory / "data.parquet"
    if parquet_rows(path) == rows:
        log(f"reusing {rows:,} rows in {path}")
        return path
    log(f"generating {rows:,} rows as {path}")

    def write(partial: Path) -> None:
        writer: pq.ParquetWriter | None = None
        for index, start in enumerate(range(0, rows, LARGE_CHUNK_ROWS)):
            count = min(LARGE_CHUNK_ROWS, rows - start)
            table = to_arrow(drift_frames(count, seed=LARGE_SEED + index)[0])
            writer = writer or pq.ParquetWriter(partial / path.name, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        if writer is not None:
            writer.close()

    generate(directory, write)
    return path


def warm_page_cache(paths: Sequence[Path]) -> None:
    """Read the inputs once so that no tool pays for a cold cache the others do not."""
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


# --- edgewise --------------------------------------------------------------------------------


def run_edgewise(reference: Path, current: Path) -> dict[str, Any]:
    """Profile both files, then compare the profiles: edgewise's drift check, end to end."""
    started = time.perf_counter()
    reference_profile = edgewise.profile(str(reference))
    profiled_reference = time.perf_counter()
    current_profile = edgewise.profile(str(current))
    profiled_current = time.perf_counter()
    report = edgewise.drift(reference_profile, current_profile)
    finished = time.perf_counter()
    columns = {
        c.name: {
            "kind": c.kind,
            "method": c.method,
            "score": c.score,
            "threshold": c.threshold,
            "drifted": bool(c.drifted),
        }
        for c in report.columns
    }
    encoded = time.perf_counter()
    size = len(reference_profile.to_bytes())
    encode_seconds = time.perf_counter() - encoded
    return {
        "seconds": finished - started,
        "stages": {
            "profile reference": profiled_reference - started,
            "profile current": profiled_current - profiled_reference,
            "drift": finished - profiled_current,
        },
        "drifted": bool(report.drifted),
        "columns": columns,
        "profile_bytes": size,
        "profile_columns": len(columns),
        "to_bytes_seconds": encode_seconds,
    }


def run_edgewise_profile(path: Path, threads: int) -> float:
    started = time.perf_counter()
    edgewise.profile(str(path), threads=threads)
    return time.perf_counter() - started


# --- numpy + scipy, by hand ------------------------------------------------------------------


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index between two count vectors over the same bins."""
    e = np.maximum(expected / expected.sum(), PSI_FLOOR)
    a = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_values(column: pa.ChunkedArray) -> np.ndarray:
    """The non-null values as numbers (timestamps as their integer ticks)."""
    column = pc.drop_null(column)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    values = column.to_numpy()
    return values[~np.isnan(values)] if values.dtype.kind == "f" else values


def numeric_drift(reference: pa.ChunkedArray, current: pa.ChunkedArray) -> dict[str, Any]:
    """PSI over 10 reference-quantile bins (a value equal to an edge falls in the lower bin,
    so counts keep their own bins) and the two-sample KS test."""
    r, c = numeric_values(reference), numeric_values(current)
    edges = np.unique(np.quantile(r, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    bins = len(edges) + 1
    r_counts = np.bincount(np.searchsorted(edges, r, side="left"), minlength=bins)
    c_counts = np.bincount(np.searchsorted(edges, c, side="left"), minlength=bins)
    ks = stats.ks_2samp(r, c)
    return {"test": "ks", "p_value": float(ks.pvalue), "psi": psi(r_counts, c_counts)}


def categorical_drift(reference: pa.ChunkedArray, current: pa.ChunkedArray) -> dict[str, Any]:
    """PSI over the category shares and the chi-square test of the 2 x categories table."""
    counts: dict[Any, list[int]] = {}
    for side, column in enumerate((reference, current)):
        for item in pc.value_counts(column).to_pylist():
            counts.setdefault(item["values"], [0, 0])[side] += item["counts"]
    table = np.array(list(counts.values()), dtype=np.float64).T
    table = table[:, table.sum(axis=0) > 0]
    p_value = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    return {"test": "chi-square", "p_value": p_value, "psi": psi(table[0], table[1])}


def run_numpy_scipy(reference: Path, current: Path) -> dict[str, Any]:
    started = time.perf_counter()
    reference_table = pq.read_table(reference)
    current_table = pq.read_table(current)
    read = time.perf_counter()
    columns = {}
    for name in reference_table.column_names:
        r, c = reference_table.column(name), current_table.column(name)
        categorical = (
            pa.types.is_string(r.type)
            or pa.types.is_large_string(r.type)
            or pa.types.is_boolean(r.type)
            or pa.types.is_dictionary(r.type)
        )
        result = categorical_drift(r, c) if categorical else numeric_drift(r, c)
        result["drifted_p"] = result["p_value"] < P_VALUE
        result["drifted_psi"] = result["psi"] >= PSI_THRESHOLD
        columns[name] = result
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "stages": {"read": read - started, "compare": finished - read},
        "columns": columns,
    }


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Result:
    table: str  # "drift" (both files, end to end) or "profile" (the large file)
    tool: str
    seconds: float  # best of --repeat
    rows: int
    ratio: float | None = None  # edgewise throughput / this tool's throughput
    note: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    all_seconds: list[float] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def flagged(columns: dict[str, Any], key: str = "drifted") -> dict[str, Any]:
    """Per column: what the tool measured, and whether it flagged the column (`key`)."""
    return {name: {**values, "flagged": bool(values[key])} for name, values in columns.items()}


def quality(
    checked: dict[str, Any], all_columns: Sequence[str], shifts: dict[str, str]
) -> dict[str, Any]:
    shifted = [c for c in all_columns if c in shifts]
    unchanged = [c for c in all_columns if c not in shifts]
    hits = [c for c in all_columns if c in checked and checked[c]["flagged"]]
    return {
        "shifted_flagged": [c for c in shifted if c in hits],
        "shifted": len(shifted),
        "unchanged_flagged": [c for c in unchanged if c in hits],
        "unchanged": len(unchanged),
        "not_checked": [c for c in all_columns if c not in checked],
    }


@dataclass
class Inputs:
    reference: Path
    current: Path
    large: Path | None  # the single larger file, or None with --large-rows 0
    columns: list[str]


@dataclass
class Collected:
    """What the tools measured and found, gathered for the report."""

    results: list[Result] = field(default_factory=list)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # tool -> column -> found
    profile_sizes: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def note_unstable(self, tool: str, runs: list[list[str]]) -> None:
        """Say so when repeated runs on the same files flagged different columns."""
        if len({tuple(sorted(r)) for r in runs}) > 1:
            self.notes.append(
                f"{tool} flagged different columns from one run to the next on the same files: "
                + "; ".join(", ".join(sorted(r)) or "none" for r in runs)
                + " (the best run's flags are shown)."
            )


def threads_label(count: int) -> str:
    return f"{count} thread" + ("s" if count > 1 else "")


def bench_edgewise(args: argparse.Namespace, inputs: Inputs, collected: Collected) -> None:
    runs = []
    for attempt in range(args.repeat):
        run = run_edgewise(inputs.reference, inputs.current)
        runs.append(run)
        log(f"edgewise      drift run {attempt + 1}: {run['seconds']:8.2f} s")
    best = min(runs, key=lambda r: r["seconds"])
    collected.results.append(
        Result(
            "drift",
            "edgewise",
            best["seconds"],
            2 * args.rows,
            note=threads_label(cores()),
            stages=best["stages"],
            all_seconds=[r["seconds"] for r in runs],
        )
    )
    collected.checks["edgewise"] = flagged(best["columns"])
    collected.note_unstable(
        "edgewise", [[c for c, v in r["columns"].items() if v["drifted"]] for r in runs]
    )
    collected.profile_sizes["edgewise"] = {
        "bytes": best["profile_bytes"],
        "columns": best["profile_columns"],
        "to_bytes_seconds": min(r["to_bytes_seconds"] for r in runs),
    }
    if inputs.large is None:
        return
    for count in dict.fromkeys((cores(), 1)):
        timings = [run_edgewise_profile(inputs.large, count) for _ in range(args.repeat)]
        log(f"edgewise      profile, {threads_label(count)}: {min(timings):8.2f} s")
        collected.results.append(
            Result(
                "profile",
                "edgewise",
                min(timings),
                args.large_rows,
                note=threads_label(count),
                all_seconds=timings,
            )
        )


def bench_numpy_scipy(args: argparse.Namespace, inputs: Inputs, collected: Collected) -> None:
    runs = []
    for attempt in range(args.repeat):
        run = run_numpy_scipy(inputs.reference, inputs.current)
        runs.append(run)
        log(f"numpy+scipy   drift run {attempt + 1}: {run['seconds']:8.2f} s")
    best = min(runs, key=lambda r: r["seconds"])
    collected.results.append(
        Result(
            "drift",
            "numpy+scipy",
            best["seconds"],
            2 * args.rows,
            stages=best["stages"],
            all_seconds=[r["seconds"] for r in runs],
        )
    )
    collected.checks[f"numpy+scipy p<{P_VALUE:g}"] = flagged(best["columns"], "drifted_p")
    collected.checks[f"numpy+scipy PSI>={PSI_THRESHOLD:g}"] = flagged(
        best["columns"], "drifted_psi"
    )


def bench_whylogs(args: argparse.Namespace, inputs: Inputs, collected: Collected) -> None:
    arguments = ["--reference", str(inputs.reference), "--current", str(inputs.current)]
    arguments += ["--repeat", str(args.repeat)]
    if inputs.large is not None and args.large_peers:
        arguments += ["--large", str(inputs.large)]
    log("whylogs       running (in its own environment)")
    found = PEERS["whylogs"].run(args.data_dir, arguments)
    drift = found["drift"]
    log(f"whylogs       drift: {drift['seconds']:8.2f} s")
    collected.results.append(
        Result(
            "drift",
            "whylogs",
            drift["seconds"],
            drift["rows"],
            stages=drift["stages"],
            all_seconds=drift["all_seconds"],
        )
    )
    # A column without a drift score (no sketch whylogs can compare) was not checked.
    collected.checks["whylogs"] = flagged(
        {name: c for name, c in drift["columns"].items() if c["method"] is not None}
    )
    collected.note_unstable("whylogs", drift["flagged_runs"])
    collected.profile_sizes["whylogs"] = {
        "bytes": drift["profile_bytes"],
        "columns": len(inputs.columns),
    }
    if "large" in found:
        large = found["large"]
        log(f"whylogs       profile: {large['seconds']:8.2f} s")
        collected.results.append(
            Result(
                "profile",
                "whylogs",
                large["seconds"],
                large["rows"],
                stages=large["stages"],
                all_seconds=large["all_seconds"],
            )
        )
    versions = found["versions"]
    collected.notes.append(
        f"whylogs {versions['whylogs']} (numpy {versions['numpy']}, pandas {versions['pandas']}, "
        f"pyarrow {versions['pyarrow']}); importing it takes {found['import_seconds']:.1f} s, "
        "not counted."
    )


def bench_evidently(args: argparse.Namespace, inputs: Inputs, collected: Collected) -> None:
    arguments = ["--reference", str(inputs.reference), "--current", str(inputs.current)]
    arguments += ["--repeat", str(args.repeat)]
    if args.evidently_sample:
        arguments += ["--sample", str(args.evidently_sample)]
    log("evidently     running (in its own environment)")
    found = PEERS["evidently"].run(args.data_dir, arguments)
    drift = found["drift"]
    log(f"evidently     drift: {drift['seconds']:8.2f} s")
    side = drift["rows"] // 2
    sampled = drift["rows"] < 2 * args.rows
    collected.results.append(
        Result(
            "drift",
            "evidently",
            drift["seconds"],
            drift["rows"],
            note=f"sample of {side:,} + {side:,} rows" if sampled else "",
            stages=drift["stages"],
            all_seconds=drift["all_seconds"],
        )
    )
    collected.checks["evidently"] = flagged(drift["columns"])
    versions = found["versions"]
    note = (
        f"Evidently {versions['evidently']} (numpy {versions['numpy']}, pandas "
        f"{versions['pandas']}); importing it takes {found['import_seconds']:.1f} s, not counted."
    )
    if sampled:
        note += (
            f" It ran on the first {side:,} rows of each file (--evidently-sample), so its "
            "flags are for that sample and its throughput for that size."
        )
    collected.notes.append(note)


BENCHES_BY_TOOL = {
    "edgewise": bench_edgewise,
    "numpy+scipy": bench_numpy_scipy,
    "whylogs": bench_whylogs,
    "evidently": bench_evidently,
}


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    reference, current, shifts = ensure_drift_data(args.data_dir, args.rows)
    large = ensure_large_data(args.data_dir, args.large_rows) if args.large_rows else None
    inputs = Inputs(reference, current, large, pq.read_schema(reference).names)
    warm_page_cache([reference, current, *([large] if large else [])])
    collected = Collected()
    for tool in args.tools:
        if tool != "evidently" or args.evidently:
            BENCHES_BY_TOOL[tool](args, inputs, collected)
    results = collected.results
    for table in ("drift", "profile"):
        ours = next((r for r in results if r.table == table and r.tool == "edgewise"), None)
        for r in results:
            if ours is not None and r.table == table:
                r.ratio = ours.rows_per_second / r.rows_per_second
    return {
        "rows": args.rows,
        "large_rows": args.large_rows if large else 0,
        "columns": len(inputs.columns),
        "repeat": args.repeat,
        "threads": cores(),
        "shifts": shifts,
        "results": [{**asdict(r), "rows_per_second": round(r.rows_per_second)} for r in results],
        "checks": collected.checks,
        "quality": {
            tool: quality(found, inputs.columns, shifts) for tool, found in collected.checks.items()
        },
        "profile_sizes": collected.profile_sizes,
        "notes": collected.notes,
    }


# --- reporting -------------------------------------------------------------------------------


def timing_table(results: list[dict[str, Any]]) -> list[str]:
    header = ("tool", "seconds", "M rows/s", "ratio")
    lines = []
    for r in results:
        tool = f"{r['tool']} ({r['note']})" if r["note"] else r["tool"]
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else ""
        lines.append((tool, f"{r['seconds']:.2f}", f"{r['rows_per_second'] / 1e6:.3f}", ratio))
    return markdown_table(header, lines, {1, 2, 3})


def format_table(report: dict[str, Any]) -> str:
    results = report["results"]
    text = [
        f"Drift check, end to end from Parquet: {report['rows']:,} reference + "
        f"{report['rows']:,} current rows, {report['columns']} columns; best of "
        f"{report['repeat']}:",
        "",
        *timing_table([r for r in results if r["table"] == "drift"]),
    ]
    profile = [r for r in results if r["table"] == "profile"]
    if profile:
        text += [
            "",
            f"Parquet -> profile, one file of {report['large_rows']:,} rows, "
            f"{report['columns']} columns:",
            "",
            *timing_table(profile),
        ]
    text.append("")
    text.append(
        f"{report['threads']} cores; ratio = edgewise throughput (one thread per core) / the "
        "tool's throughput. Load average (1 min) "
        f"{report['environment']['load_average'][0]:.1f} before the run and "
        f"{report['environment']['load_average_after'][0]:.1f} after it: other work on the "
        "machine slows every tool. Stages of the best run:"
    )
    for r in results:
        if r["stages"]:
            stages = ", ".join(f"{k} {v:.2f} s" for k, v in r["stages"].items())
            text.append(f"- {r['tool']} ({r['table']}): {stages}")
    sizes = report["profile_sizes"]
    if sizes:
        parts = []
        for tool, s in sizes.items():
            part = f"{tool} {s['bytes']:,} bytes ({s['bytes'] / s['columns']:,.0f} per column)"
            if "to_bytes_seconds" in s:
                part += f", Profile.to_bytes() in {s['to_bytes_seconds'] * 1e3:.2f} ms"
            parts.append(part)
        text.append("Serialized profile of the reference file: " + "; ".join(parts) + ".")

    checks = report["checks"]
    if checks:
        text += ["", "Columns flagged as drifted (x; blank: not flagged; -: not checked):", ""]
        header = ("column", "truth", *checks)
        lines = []
        columns = list(dict.fromkeys(c for found in checks.values() for c in found))
        columns = sorted(columns, key=lambda c: (c not in report["shifts"], c))
        for column in columns:
            truth = "shifted" if column in report["shifts"] else "unchanged"
            cells = [
                "-" if column not in found else ("x" if found[column]["flagged"] else "")
                for found in checks.values()
            ]
            lines.append((column, truth, *cells))
        text += markdown_table(header, lines, set())
        text.append("")
        for tool, q in report["quality"].items():
            line = (
                f"{tool}: shifted columns flagged: {len(q['shifted_flagged'])}/{q['shifted']}; "
                f"unchanged columns flagged: {len(q['unchanged_flagged'])}/{q['unchanged']}"
            )
            if q["unchanged_flagged"]:
                line += f" ({', '.join(q['unchanged_flagged'])})"
            if q["not_checked"]:
                line += f"; not checked: {', '.join(q['not_checked'])}"
            text.append(line)
        text.append("")
        text.append("The shifts: " + "; ".join(f"{k}: {v}" for k, v in report["shifts"].items()))
    if report["notes"]:
        text.append("")
        text += report["notes"]
    return "\n".join(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the reference and of the current data"
    )
    parser.add_argument(
        "--large-rows",
        type=int,
        default=5_000_000,
        help="rows of the single file for the profiling throughput (0: skip it)",
    )
    parser.add_argument(
        "--tools",
        nargs="+",
        choices=TOOLS,
        default=list(TOOLS),
        help="tools to run (default: all; evidently also needs --evidently)",
    )
    parser.add_argument(
        "--evidently",
        action="store_true",
        help="run Evidently's DataDriftPreset too (about a minute per million rows a side)",
    )
    parser.add_argument(
        "--evidently-sample",
        type=int,
        help="Evidently uses only the first N rows of each file (default: all rows)",
    )
    parser.add_argument(
        "--large-peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="profile the large file with whylogs too (default: on; several minutes)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best counts")
    parser.add_argument(
        "--json", action="store_true", help="print the numbers as JSON (the table goes to stderr)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1 or args.large_rows < 0:
        parser.error("--rows and --repeat must be positive, --large-rows not negative")
    if args.evidently_sample is not None and args.evidently_sample < 1:
        parser.error("--evidently-sample must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report: dict[str, Any] = {"environment": environment(LIBRARIES)}
    report.update(benchmark(args))
    report["environment"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    table = format_table(report)
    emit(report, table, args.json)


if __name__ == "__main__":
    main()
