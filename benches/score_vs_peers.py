"""Batch scoring throughput of edgewise against the code people write today.

For each model (logistic regression, histogram gradient boosting, random forest, each behind
the same impute/scale/one-hot preprocessing from `edgewise.datasets.credit_pipeline`) this
script trains the pipeline on 100k synthetic rows, compiles it to a bundle, and then scores
the same Parquet files, in the same run, three ways:

* edgewise: the `edgewise score` CLI as a subprocess, timed from the outside, so interpreter
  start-up, imports and model loading are all inside the figure; its peak RSS is measured
  with GNU time (or by polling its VmHWM);
* pandas + scikit-learn: per file, `pd.read_parquet`, `pipeline.predict_proba`, then
  `DataFrame.to_parquet` of applicant_id, label and probabilities (timed from `joblib.load`);
* polars + onnxruntime: per file, `pl.read_parquet`, per-column [n, 1] inputs in slices of
  the edgewise batch size, the bundle's own ONNX graph on onnxruntime with one intra-op
  thread per core, then `write_parquet` (timed from creating the session).

The outputs are then compared, so the benchmark cannot quietly time different work: edgewise
must match polars + onnxruntime (same graph) to 1e-5 and the same labels, and its largest
difference from scikit-learn is reported. On a shared machine the ratios (edgewise
throughput / peer throughput, measured back to back) are the figure, not the seconds.

`--memory-check` instead scores 4M and 40M rows (files of about 4M rows, generated in chunks,
never whole in memory) with the logistic model and reports the peak RSS of `edgewise score`
for both, to show that memory does not grow with the data.

Run it with `make bench`, which runs `python benches/score_vs_peers.py`, or directly:

    .venv/bin/python benches/score_vs_peers.py                    # 4M rows, all three models
    .venv/bin/python benches/score_vs_peers.py --rows 200000 --models logistic --json
    .venv/bin/python benches/score_vs_peers.py --memory-check

Generated data goes to --data-dir (default ./bench-data, ignored by git) and is reused by
later runs with the same row and file counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

from edgewise import Bundle
from edgewise.compile import compile_pipeline
from edgewise.datasets import FEATURES, TARGET, credit_frame, credit_pipeline, write_credit_parquet
from edgewise.environment import library_versions

MODELS = ("logistic", "hist_gradient_boosting", "random_forest")
TOOLS = ("edgewise", "pandas+sklearn", "polars+onnxruntime")
TRAIN_ROWS = 100_000
DATA_SEED = 7  # the training frame uses seed 0, so scored rows are unseen
BATCH_ROWS = 256 * 1024  # edgewise's default --batch-rows; polars+onnxruntime uses the same
MEMORY_ROWS = (4_000_000, 40_000_000)
MEMORY_FILE_ROWS = 4_000_000
ONNX_TOLERANCE = 1e-5
GNU_TIME = Path("/usr/bin/time")
LIBRARIES = ("edgewise", "numpy", "pandas", "polars", "pyarrow", "scikit-learn", "onnxruntime")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- data and models -------------------------------------------------------------------------


def ensure_data(directory: Path, rows: int, files: int) -> list[Path]:
    """The Parquet inputs in `directory`, generated unless already there with `rows` rows."""
    per_file = -(-rows // files)
    expected_files = -(-rows // per_file)
    paths = sorted(directory.glob("part-*.parquet"))
    if len(paths) == expected_files:
        found = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
        if found == rows:
            log(f"reusing {rows:,} rows in {len(paths)} file(s) under {directory}")
            return paths
    log(f"generating {rows:,} rows as {expected_files} Parquet file(s) under {directory}")
    shutil.rmtree(directory, ignore_errors=True)
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    write_credit_parquet(partial, rows, files=files, seed=DATA_SEED)
    partial.rename(directory)
    log(f"  generated in {time.perf_counter() - started:.1f} s")
    return sorted(directory.glob("part-*.parquet"))


@dataclass(frozen=True)
class Trained:
    model: str
    bundle: Path
    pipeline: Path  # joblib dump of the fitted scikit-learn pipeline


def train_models(models: Sequence[str], directory: Path) -> dict[str, Trained]:
    """Fit each pipeline on TRAIN_ROWS rows, save it with joblib and compile it to a bundle."""
    directory.mkdir(parents=True, exist_ok=True)
    train = credit_frame(TRAIN_ROWS, seed=0)
    trained = {}
    for model in models:
        started = time.perf_counter()
        pipeline = credit_pipeline(model)
        pipeline.fit(train[FEATURES], train[TARGET])
        pipeline_path = directory / f"credit-{model}.joblib"
        joblib.dump(pipeline, pipeline_path)
        result = compile_pipeline(
            pipeline, train, name=f"credit-{model.replace('_', '-')}", version=1
        )
        bundle_path = result.bundle.write(directory / f"credit-{model}.ewb")
        log(
            f"trained and compiled {model} in {time.perf_counter() - started:.1f} s "
            f"({bundle_path.stat().st_size:,} byte bundle; {result.fidelity.describe()})"
        )
        trained[model] = Trained(model, bundle_path, pipeline_path)
    return trained


def warm_page_cache(paths: Sequence[Path]) -> None:
    """Read the inputs once so that no tool pays for a cold cache the others do not."""
    for path in paths:
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def fresh_directory(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


# --- the three ways to score -----------------------------------------------------------------


@dataclass
class EdgewiseRun:
    seconds: float  # wall time around the subprocess
    summary: dict[str, Any]  # `edgewise score --json`, including its own in-process seconds
    peak_rss_mb: float


def edgewise_executable() -> str:
    beside = Path(sys.executable).with_name("edgewise")
    found = str(beside) if beside.exists() else shutil.which("edgewise")
    if not found:
        raise SystemExit("cannot find the edgewise CLI; run `make dev` first")
    return found


def run_edgewise(bundle: Path, inputs: Sequence[Path], out: Path) -> EdgewiseRun:
    """`edgewise score` as a user runs it, timed from outside, with its peak RSS.

    The peak comes from GNU time, or failing that from polling the child's VmHWM. The child's
    own rusage (wait4, RUSAGE_CHILDREN) is no good: Linux carries the parent's high-water mark
    into the child through fork/vfork and exec, so it reports at least this script's own peak.
    """
    fresh_directory(out)
    command = [edgewise_executable(), "score", str(bundle), *map(str, inputs)]
    command += ["-o", str(out), "--keep", "applicant_id", "--json"]
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "peak-rss-kib"
        if GNU_TIME.exists():
            command = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *command]
        with (
            (Path(scratch) / "out").open("w+b") as stdout,
            (Path(scratch) / "err").open("w+b") as stderr,
        ):
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr)
            peak_kib = 0 if GNU_TIME.exists() else poll_peak_rss_kib(process)
            process.wait()
            seconds = time.perf_counter() - started
            stdout.seek(0)
            stderr.seek(0)
            if process.returncode != 0:
                raise SystemExit(
                    f"edgewise score failed ({process.returncode}): {stderr.read().decode()}"
                )
            summary = json.loads(stdout.read())
        if GNU_TIME.exists():
            peak_kib = int(rss_file.read_text().split()[-1])
    return EdgewiseRun(seconds, summary, peak_kib / 1024)


def poll_peak_rss_kib(process: subprocess.Popen[bytes]) -> int:
    """The child's VmHWM (a high-water mark, so the last reading is close to the peak)."""
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return peak


def run_pandas_sklearn(pipeline_path: Path, inputs: Sequence[Path], out: Path) -> float:
    """Per file: read with pandas, predict_proba, write applicant_id + scores with pandas."""
    fresh_directory(out).mkdir()
    started = time.perf_counter()
    pipeline = joblib.load(pipeline_path)
    classes = pipeline.classes_
    for index, path in enumerate(inputs):
        frame = pd.read_parquet(path, columns=["applicant_id", *FEATURES])
        probabilities = pipeline.predict_proba(frame[FEATURES])
        scores = pd.DataFrame(
            {"applicant_id": frame["applicant_id"], "label": classes[probabilities.argmax(axis=1)]}
        )
        for column, value in enumerate(classes):
            scores[f"proba_{value}"] = probabilities[:, column]
        scores.to_parquet(out / f"part-{index:05d}.parquet", index=False)
    return time.perf_counter() - started


def run_polars_onnxruntime(
    onnx_model: bytes, classes: list[Any], inputs: Sequence[Path], out: Path, threads: int
) -> float:
    """Per file: read with polars, run the ONNX graph on slices, write with polars."""
    fresh_directory(out).mkdir()
    started = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
    feeds = [(i.name, i.type == "tensor(string)") for i in session.get_inputs()]
    columns = ["applicant_id", *(name for name, _ in feeds)]
    for index, path in enumerate(inputs):
        frame = pl.read_parquet(path, columns=columns)
        scored = []
        for chunk in frame.iter_slices(BATCH_ROWS):
            tensors = {
                name: (
                    chunk[name].to_numpy() if string else chunk[name].to_numpy().astype(np.float32)
                ).reshape(-1, 1)
                for name, string in feeds
            }
            label, probabilities = session.run(["label", "probabilities"], tensors)
            scores = {"applicant_id": chunk["applicant_id"], "label": label}
            for column, value in enumerate(classes):
                scores[f"proba_{value}"] = probabilities[:, column]
            scored.append(pl.DataFrame(scores))
        pl.concat(scored).write_parquet(out / f"part-{index:05d}.parquet")
    return time.perf_counter() - started


# --- checking that all three did the same work -----------------------------------------------


def read_scores(directory: Path, classes: list[Any]) -> pl.DataFrame:
    columns = ["applicant_id", "label", *(f"proba_{c}" for c in classes)]
    return pl.read_parquet(directory / "part-*.parquet", columns=columns).sort("applicant_id")


def compare(
    model: str, classes: list[Any], rows: int, outputs: dict[str, Path], quarantined: int
) -> dict[str, Any]:
    """Max probability differences of edgewise from each peer; fails on a real mismatch."""
    edgewise = read_scores(outputs["edgewise"], classes)
    probabilities = [f"proba_{c}" for c in classes]
    if quarantined or edgewise.height != rows:
        raise SystemExit(
            f"{model}: edgewise scored {edgewise.height:,} of {rows:,} rows "
            f"({quarantined:,} quarantined): the tools would not be doing the same work"
        )
    result: dict[str, Any] = {}
    for tool in TOOLS[1:]:
        peer = read_scores(outputs[tool], classes)
        if peer.height != rows or not edgewise["applicant_id"].equals(peer["applicant_id"]):
            raise SystemExit(f"{model}: {tool} did not score the same {rows:,} rows")
        ours = edgewise.select(probabilities).to_numpy().astype(np.float64)
        theirs = peer.select(probabilities).to_numpy().astype(np.float64)
        max_diff = float(np.abs(ours - theirs).max()) if rows else 0.0
        labels = float((edgewise["label"] == peer["label"]).mean() or 0.0) if rows else 1.0
        result[tool] = {"max_abs_diff": max_diff, "label_agreement": labels}
    onnx = result["polars+onnxruntime"]
    if onnx["max_abs_diff"] > ONNX_TOLERANCE or onnx["label_agreement"] != 1.0:
        raise SystemExit(
            f"{model}: edgewise and polars+onnxruntime ran the same graph but differ by "
            f"{onnx['max_abs_diff']:.3g} (labels agree on {onnx['label_agreement']:.6f})"
        )
    return result


# --- the benchmark ---------------------------------------------------------------------------


@dataclass
class Result:
    model: str
    tool: str
    seconds: float  # best of --repeat
    rows: int
    ratio: float | None = None  # edgewise throughput / this tool's throughput
    peak_rss_mb: float | None = None
    inside_seconds: float | None = None  # edgewise's own timing, without start-up and load
    all_seconds: list[float] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    data_dir: Path = args.data_dir
    inputs = ensure_data(data_dir / f"rows-{args.rows}-files-{args.files}", args.rows, args.files)
    trained = train_models(args.models, data_dir / "models")
    warm_page_cache(inputs)
    threads = cores()
    results: list[Result] = []
    agreement = {}
    for model in args.models:
        bundle = Bundle.read(trained[model].bundle)
        classes = list(bundle.manifest["outputs"]["classes"])
        outputs = {tool: data_dir / "out" / model / tool.replace("+", "-") for tool in TOOLS}
        timings: dict[str, list[float]] = {tool: [] for tool in TOOLS}
        runs: list[EdgewiseRun] = []
        for attempt in range(args.repeat):
            log(f"{model}: run {attempt + 1} of {args.repeat}")
            run = run_edgewise(trained[model].bundle, inputs, outputs["edgewise"])
            runs.append(run)
            timings["edgewise"].append(run.seconds)
            log(f"  edgewise            {run.seconds:8.2f} s  peak RSS {run.peak_rss_mb:,.0f} MB")
            seconds = run_pandas_sklearn(trained[model].pipeline, inputs, outputs[TOOLS[1]])
            timings[TOOLS[1]].append(seconds)
            log(f"  pandas+sklearn      {seconds:8.2f} s")
            seconds = run_polars_onnxruntime(
                bundle.model, classes, inputs, outputs[TOOLS[2]], threads
            )
            timings[TOOLS[2]].append(seconds)
            log(f"  polars+onnxruntime  {seconds:8.2f} s")
        best = min(runs, key=lambda r: r.seconds)
        rows = int(best.summary["rows_read"])
        agreement[model] = compare(
            model, classes, rows, outputs, int(best.summary["rows_quarantined"])
        )
        ours = Result(
            model,
            "edgewise",
            best.seconds,
            rows,
            ratio=1.0,
            peak_rss_mb=max(r.peak_rss_mb for r in runs),
            inside_seconds=float(best.summary["seconds"]),
            all_seconds=timings["edgewise"],
        )
        results.append(ours)
        for tool in TOOLS[1:]:
            peer = Result(model, tool, min(timings[tool]), rows, all_seconds=timings[tool])
            peer.ratio = ours.rows_per_second / peer.rows_per_second
            results.append(peer)
        shutil.rmtree(data_dir / "out" / model, ignore_errors=True)
    return {
        "rows": args.rows,
        "files": len(inputs),
        "repeat": args.repeat,
        "threads": threads,
        "results": [{**asdict(r), "rows_per_second": round(r.rows_per_second)} for r in results],
        "agreement": agreement,
    }


def memory_check(args: argparse.Namespace) -> dict[str, Any]:
    """Peak RSS of `edgewise score` with the logistic model on growing inputs."""
    data_dir: Path = args.data_dir
    trained = train_models(["logistic"], data_dir / "models")
    measured = []
    for rows in args.memory_rows:
        files = max(1, math.ceil(rows / MEMORY_FILE_ROWS))
        inputs = ensure_data(data_dir / f"rows-{rows}-files-{files}", rows, files)
        warm_page_cache(inputs)
        out = data_dir / "out" / f"memory-{rows}"
        run = run_edgewise(trained["logistic"].bundle, inputs, out)
        shutil.rmtree(out, ignore_errors=True)
        entry = {
            "rows": rows,
            "files": len(inputs),
            "seconds": run.seconds,
            "rows_per_second": round(rows / run.seconds),
            "peak_rss_mb": run.peak_rss_mb,
        }
        log(
            f"{rows:,} rows in {len(inputs)} file(s): {run.seconds:.1f} s, "
            f"peak RSS {run.peak_rss_mb:,.0f} MB"
        )
        measured.append(entry)
    return {"model": "logistic", "runs": measured}


# --- reporting -------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    versions = library_versions(LIBRARIES)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
    }


def format_table(report: dict[str, Any]) -> str:
    header = ("model", "tool", "seconds", "M rows/s", "ratio", "peak RSS")
    lines = []
    for r in report["results"]:
        ratio = "1.00" if r["tool"] == "edgewise" else f"{r['ratio']:.2f}"
        rss = f"{r['peak_rss_mb']:,.0f} MB" if r["peak_rss_mb"] is not None else ""
        lines.append(
            (
                r["model"],
                r["tool"],
                f"{r['seconds']:.2f}",
                f"{r['rows_per_second'] / 1e6:.2f}",
                ratio,
                rss,
            )
        )
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = {2, 3, 4, 5}

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
    text = [render(header), rule, *map(render, lines)]
    text.append("")
    text.append(
        f"{report['rows']:,} rows in {report['files']} Parquet files, {report['threads']} cores, "
        f"best of {report['repeat']}; ratio = edgewise throughput / the tool's throughput."
    )
    for r in report["results"]:
        if r["tool"] == "edgewise":
            text.append(
                f"{r['model']}: edgewise wall {r['seconds']:.2f} s, of which scoring "
                f"{r['inside_seconds']:.2f} s (the rest is start-up and model load)"
            )
    for model, peers in report["agreement"].items():
        parts = [
            f"vs {tool}: max |Δp| {v['max_abs_diff']:.2g}, labels agree {v['label_agreement']:.4%}"
            for tool, v in peers.items()
        ]
        text.append(f"{model}: " + "; ".join(parts))
    return "\n".join(text)


def format_memory(report: dict[str, Any]) -> str:
    lines = ["| rows | files | seconds | M rows/s | peak RSS |", "|---:|---:|---:|---:|---:|"]
    for run in report["runs"]:
        lines.append(
            f"| {run['rows']:,} | {run['files']} | {run['seconds']:.1f} | "
            f"{run['rows_per_second'] / 1e6:.2f} | {run['peak_rss_mb']:,.0f} MB |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000, help="rows to score")
    parser.add_argument("--files", type=int, default=4, help="Parquet files to split them into")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=MODELS,
        default=list(MODELS),
        help="models to benchmark (default: all)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per tool; the best counts")
    parser.add_argument(
        "--json", action="store_true", help="print the numbers as JSON (the table goes to stderr)"
    )
    parser.add_argument(
        "--memory-check",
        action="store_true",
        help="instead: peak RSS of edgewise score on 4M and 40M rows (logistic)",
    )
    parser.add_argument(
        "--memory-rows",
        type=lambda text: [int(n) for n in text.split(",")],
        default=list(MEMORY_ROWS),
        help="row counts for --memory-check, comma-separated (default: 4000000,40000000)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.files < 1 or args.repeat < 1:
        parser.error("--rows, --files and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report: dict[str, Any] = {"environment": environment()}
    if args.memory_check:
        report["memory"] = memory_check(args)
        table = format_memory(report["memory"])
    else:
        report.update(benchmark(args))
        table = format_table(report)
    if args.json:
        log(table)
        print(json.dumps(report, indent=2))
    else:
        print(table)


if __name__ == "__main__":
    main()
