"""Batch scoring throughput of edgewise against the code people write today.

For each model (logistic regression, histogram gradient boosting, random forest, each behind
the same impute/scale/one-hot preprocessing from `edgewise.datasets.credit_pipeline`) this
script trains the pipeline on 100k synthetic rows, compiles it to a bundle (which holds the
exact float64 graph), converts it with skl2onnx's standard float32 conversion as well, and
then scores the same Parquet files, in the same run, three ways:

* edgewise: the `edgewise score` CLI as a subprocess (`--engine`, default auto: the native
  engine whenever it covers the graph), timed from the outside, so interpreter start-up,
  imports and model loading are all inside the figure; its peak RSS is measured with GNU time
  (or by polling its VmHWM);
* pandas + scikit-learn: per file, `pd.read_parquet`, `pipeline.predict_proba`, then
  `DataFrame.to_parquet` of applicant_id, label and probabilities (timed from `joblib.load`);
* polars + onnxruntime: what a user does without edgewise. The pipeline goes through
  skl2onnx's float32 conversion (`edgewise.compile.convert.to_onnx`: one [n, 1] float32 or
  string input per column, zipmap=False), not the bundle's graph; per file, `pl.read_parquet`,
  per-column inputs in slices of the edgewise batch size, onnxruntime with one intra-op thread
  per core, then `write_parquet` (timed from creating the session).

The outputs are then compared with scikit-learn's, so the benchmark cannot quietly time
different work: edgewise must match every probability to 1e-6 with identical labels, or the
run fails. For each peer the largest probability difference from scikit-learn and the share
of rows differing by more than 1e-3 are reported (onnxruntime's float32 arithmetic flips tree
branches). On a shared machine the ratios (edgewise throughput / peer throughput, measured
back to back) are the figure, not the seconds.

Then, in-process on the same files, the native path is timed stage by stage (benches/
breakdown.py): Parquet read, row checks, model, write, each in seconds and M rows/s with one
thread per core. For the tree models it also reports the node visits per row (from
scikit-learn, on a 20k-row sample) and so the model step's node visits per second per core.
A model the native engine cannot load gets no stage times, with the reason.

`--memory-check` instead scores 4M and 40M rows (files of about 4M rows, generated in chunks,
never whole in memory) with the logistic model and reports the peak RSS of `edgewise score`
for both, to show that memory does not grow with the data.

Run it with `make bench`, which runs `python benches/score_vs_peers.py`, or directly:

    .venv/bin/python benches/score_vs_peers.py                    # 4M rows, all three models
    .venv/bin/python benches/score_vs_peers.py --rows 200000 --models logistic --json
    .venv/bin/python benches/score_vs_peers.py --engine onnxruntime --no-breakdown
    .venv/bin/python benches/score_vs_peers.py --memory-check

Generated data goes to --data-dir (default ./bench-data, ignored by git) and is reused by
later runs with the same row and file counts.
"""

from __future__ import annotations

import argparse
import compileall
import functools
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
from breakdown import (
    STAGES,
    best_breakdown,
    native_breakdown,
    node_visits,
    sample_frame,
    visit_rate,
)
from report import cores, emit, environment, log, markdown_table

import edgewise
from edgewise import Bundle
from edgewise.compile import compile_pipeline
from edgewise.compile.convert import input_layout, to_onnx
from edgewise.datasets import FEATURES, TARGET, credit_frame, credit_pipeline, write_credit_parquet
from edgewise.schema import InputSchema

MODELS = ("logistic", "hist_gradient_boosting", "random_forest")
TOOLS = ("edgewise", "pandas+sklearn", "polars+onnxruntime")
TRAIN_ROWS = 100_000
DATA_SEED = 7  # the training frame uses seed 0, so scored rows are unseen
BATCH_ROWS = 256 * 1024  # edgewise's default --batch-rows; polars+onnxruntime uses the same
MEMORY_ROWS = (4_000_000, 40_000_000)
MEMORY_FILE_ROWS = 4_000_000
TOLERANCE = 1e-6  # edgewise against scikit-learn, every probability
LARGE_DIFF = 1e-3  # rows differing from scikit-learn by more than this are counted
ENGINES = ("auto", "native", "onnxruntime")
GNU_TIME = Path("/usr/bin/time")
LIBRARIES = (
    "edgewise",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "scikit-learn",
    "skl2onnx",
    "onnxruntime",
)


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
    float32_onnx: Path  # skl2onnx's standard float32 conversion, for polars+onnxruntime


def train_models(models: Sequence[str], directory: Path) -> dict[str, Trained]:
    """Fit each pipeline on TRAIN_ROWS rows, save it with joblib, compile it to a bundle and
    convert it to a float32 ONNX graph as a user of skl2onnx would."""
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
        schema = InputSchema.from_json(result.bundle.manifest["schema"])
        float32_path = directory / f"credit-{model}-float32.onnx"
        float32_path.write_bytes(to_onnx(pipeline, input_layout(pipeline, schema, "float32")))
        engine = result.bundle.manifest.get("engine", {})
        log(
            f"trained, compiled and converted {model} in {time.perf_counter() - started:.1f} s "
            f"({bundle_path.stat().st_size:,} byte bundle, graph {engine.get('graph', '?')}, "
            f"engine {engine.get('name', '?')}; {result.fidelity.describe()})"
        )
        trained[model] = Trained(model, bundle_path, pipeline_path, float32_path)
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


@functools.cache
def edgewise_executable() -> str:
    beside = Path(sys.executable).with_name("edgewise")
    found = str(beside) if beside.exists() else shutil.which("edgewise")
    if not found:
        raise SystemExit("cannot find the edgewise CLI; run `make dev` first")
    # A wheel is installed with its bytecode; a `make dev` (editable) checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every edgewise module again in each run, about
    # 20 ms of start-up no installed user pays. Compile once, as pip does when it installs.
    compileall.compile_dir(Path(edgewise.__file__).parent, quiet=1)
    return found


def run_edgewise(bundle: Path, inputs: Sequence[Path], out: Path, engine: str) -> EdgewiseRun:
    """`edgewise score` as a user runs it, timed from outside, with its peak RSS.

    The peak comes from GNU time, or failing that from polling the child's VmHWM. The child's
    own rusage (wait4, RUSAGE_CHILDREN) is no good: Linux carries the parent's high-water mark
    into the child through fork/vfork and exec, so it reports at least this script's own peak.
    """
    fresh_directory(out)
    command = [edgewise_executable(), "score", str(bundle), *map(str, inputs)]
    command += ["-o", str(out), "--keep", "applicant_id", "--engine", engine, "--json"]
    # The bundle was compiled a moment ago by this script; nobody signed it.
    command += ["--insecure-unsigned"]
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
    """Per file: read with polars, run the float32 ONNX graph on slices, write with polars."""
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
    """Each tool's differences from scikit-learn; fails unless edgewise matches it to 1e-6."""
    reference = read_scores(outputs["pandas+sklearn"], classes)
    probabilities = [f"proba_{c}" for c in classes]
    expected = reference.select(probabilities).to_numpy().astype(np.float64)
    if reference.height != rows:
        raise SystemExit(f"{model}: pandas+sklearn scored {reference.height:,} of {rows:,} rows")
    if quarantined:
        raise SystemExit(
            f"{model}: edgewise quarantined {quarantined:,} of {rows:,} rows: "
            "the tools would not be doing the same work"
        )
    result: dict[str, Any] = {}
    for tool in ("edgewise", "polars+onnxruntime"):
        scores = read_scores(outputs[tool], classes)
        if scores.height != rows or not scores["applicant_id"].equals(reference["applicant_id"]):
            raise SystemExit(f"{model}: {tool} did not score the same {rows:,} rows")
        row_diff = np.abs(scores.select(probabilities).to_numpy().astype(np.float64) - expected)
        row_diff = row_diff.max(axis=1)
        result[tool] = {
            "max_abs_diff": float(row_diff.max()),
            "share_over_1e-3": float((row_diff > LARGE_DIFF).mean()),
            "label_agreement": float((scores["label"] == reference["label"]).mean() or 0.0),
        }
    ours = result["edgewise"]
    if ours["max_abs_diff"] > TOLERANCE or ours["label_agreement"] != 1.0:
        raise SystemExit(
            f"{model}: edgewise differs from scikit-learn by up to {ours['max_abs_diff']:.3g} "
            f"(tolerance {TOLERANCE:g}); labels agree on {ours['label_agreement']:.6%}"
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
    engine: str | None = None  # what ran the model inside `edgewise score`
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
    breakdowns = {}
    for model in args.models:
        bundle = Bundle.read(trained[model].bundle)
        classes = list(bundle.manifest["outputs"]["classes"])
        float32_graph = trained[model].float32_onnx.read_bytes()
        outputs = {tool: data_dir / "out" / model / tool.replace("+", "-") for tool in TOOLS}
        timings: dict[str, list[float]] = {tool: [] for tool in TOOLS}
        runs: list[EdgewiseRun] = []
        stage_runs: list[dict[str, Any]] = []
        for attempt in range(args.repeat):
            log(f"{model}: run {attempt + 1} of {args.repeat}")
            run = run_edgewise(trained[model].bundle, inputs, outputs["edgewise"], args.engine)
            runs.append(run)
            timings["edgewise"].append(run.seconds)
            log(
                f"  edgewise            {run.seconds:8.2f} s  peak RSS {run.peak_rss_mb:,.0f} MB "
                f"({run.summary['engine']} engine)"
            )
            seconds = run_pandas_sklearn(trained[model].pipeline, inputs, outputs[TOOLS[1]])
            timings[TOOLS[1]].append(seconds)
            log(f"  pandas+sklearn      {seconds:8.2f} s")
            seconds = run_polars_onnxruntime(
                float32_graph, classes, inputs, outputs[TOOLS[2]], threads
            )
            timings[TOOLS[2]].append(seconds)
            log(f"  polars+onnxruntime  {seconds:8.2f} s")
            if args.breakdown:
                stages = native_breakdown(
                    trained[model].bundle,
                    inputs,
                    fresh_directory(data_dir / "out" / model / "breakdown"),
                    threads,
                    BATCH_ROWS,
                )
                stage_runs.append(stages)
                if "skipped" in stages:
                    log(f"  native breakdown    skipped: {stages['skipped']}")
                else:
                    log(f"  native breakdown    {stages['total_seconds']:8.2f} s (stages in turn)")
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
            engine=str(best.summary["engine"]),
            all_seconds=timings["edgewise"],
        )
        results.append(ours)
        for tool in TOOLS[1:]:
            peer = Result(model, tool, min(timings[tool]), rows, all_seconds=timings[tool])
            peer.ratio = ours.rows_per_second / peer.rows_per_second
            results.append(peer)
        if args.breakdown:
            breakdowns[model] = model_breakdown(trained[model], inputs[0], stage_runs, threads)
        shutil.rmtree(data_dir / "out" / model, ignore_errors=True)
    return {
        "rows": args.rows,
        "files": len(inputs),
        "repeat": args.repeat,
        "threads": threads,
        "engine": args.engine,
        "results": [{**asdict(r), "rows_per_second": round(r.rows_per_second)} for r in results],
        "agreement": agreement,
        "breakdown": breakdowns,
    }


def model_breakdown(
    trained: Trained, sample_from: Path, stage_runs: list[dict[str, Any]], threads: int
) -> dict[str, Any]:
    """The fastest time of each native stage and, for tree models, the node visit rate."""
    breakdown = best_breakdown(stage_runs)
    visits = node_visits(joblib.load(trained.pipeline), sample_frame(sample_from))
    if visits is not None:
        model_rate = breakdown.get("stages", {}).get("model", {}).get("rows_per_second")
        breakdown["tree"] = visit_rate(visits, model_rate, threads) if model_rate else visits
    return breakdown


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
        run = run_edgewise(trained["logistic"].bundle, inputs, out, args.engine)
        shutil.rmtree(out, ignore_errors=True)
        entry = {
            "rows": rows,
            "files": len(inputs),
            "seconds": run.seconds,
            "rows_per_second": round(rows / run.seconds),
            "peak_rss_mb": run.peak_rss_mb,
            "engine": run.summary["engine"],
        }
        log(
            f"{rows:,} rows in {len(inputs)} file(s): {run.seconds:.1f} s, "
            f"peak RSS {run.peak_rss_mb:,.0f} MB"
        )
        measured.append(entry)
    return {"model": "logistic", "engine": args.engine, "runs": measured}


# --- reporting -------------------------------------------------------------------------------


def format_table(report: dict[str, Any]) -> str:
    header = ("model", "tool", "seconds", "M rows/s", "ratio", "peak RSS")
    lines = []
    for r in report["results"]:
        ratio = "1.00" if r["tool"] == "edgewise" else f"{r['ratio']:.2f}"
        rss = f"{r['peak_rss_mb']:,.0f} MB" if r["peak_rss_mb"] is not None else ""
        tool = f"edgewise ({r['engine']})" if r["tool"] == "edgewise" else r["tool"]
        lines.append(
            (
                r["model"],
                tool,
                f"{r['seconds']:.2f}",
                f"{r['rows_per_second'] / 1e6:.2f}",
                ratio,
                rss,
            )
        )
    text = markdown_table(header, lines, {2, 3, 4, 5})
    text.append("")
    text.append(
        f"{report['rows']:,} rows in {report['files']} Parquet files, {report['threads']} cores, "
        f"best of {report['repeat']}; ratio = edgewise throughput / the tool's throughput; "
        f"edgewise score --engine {report['engine']} (the engine that ran is in brackets)."
    )
    for r in report["results"]:
        if r["tool"] == "edgewise":
            text.append(
                f"{r['model']}: edgewise wall {r['seconds']:.2f} s, of which scoring "
                f"{r['inside_seconds']:.2f} s (the rest is start-up and model load)"
            )
    text.append("")
    text.append(
        f"Difference from scikit-learn (max |Δp| over every probability; share of rows off by "
        f"more than {LARGE_DIFF:g}; labels agreeing):"
    )
    for model, tools in report["agreement"].items():
        parts = [
            f"{tool} {v['max_abs_diff']:.2g}, {v['share_over_1e-3']:.3%}, "
            f"{v['label_agreement']:.4%}"
            for tool, v in tools.items()
        ]
        text.append(f"{model}: " + "; ".join(parts))
    if report["breakdown"]:
        text.append("")
        text.append(format_breakdown(report["breakdown"]))
    return "\n".join(text)


def format_breakdown(breakdowns: dict[str, Any]) -> str:
    header = ("model", "stage", "seconds", "M rows/s", "share")
    lines: list[Sequence[str]] = []
    notes = []
    for model, b in breakdowns.items():
        if "skipped" in b:
            notes.append(f"{model}: no stage times: {b['skipped']}")
        else:
            for stage in STAGES:
                s = b["stages"][stage]
                lines.append(
                    (
                        model,
                        stage,
                        f"{s['seconds']:.3f}",
                        f"{s['rows_per_second'] / 1e6:.2f}",
                        f"{s['seconds'] / b['total_seconds']:.0%}",
                    )
                )
            lines.append(
                (
                    model,
                    "total",
                    f"{b['total_seconds']:.3f}",
                    f"{b['rows'] / b['total_seconds'] / 1e6:.2f}",
                    "",
                )
            )
        tree = b.get("tree")
        if tree:
            note = (
                f"{model}: {tree['visits_per_row']:,.0f} node visits per row "
                f"({tree['trees']} trees, mean leaf depth {tree['mean_leaf_depth']:.2f}, "
                f"scikit-learn on {tree['sample_rows']:,} rows)"
            )
            if "visits_per_second_per_core" in tree:
                note += (
                    f"; model step {tree['visits_per_second_per_core'] / 1e6:,.0f} M node visits "
                    f"per second per core ({tree['ns_per_visit']:.2f} ns per visit)"
                )
            notes.append(note)
    threads = next((b["threads"] for b in breakdowns.values() if "threads" in b), None)
    text = [
        "Native path, in-process, one stage after another"
        + (f" ({threads} threads):" if threads else ":")
    ]
    if lines:
        text += markdown_table(header, lines, {2, 3, 4})
    text += notes
    return "\n".join(text)


def format_memory(report: dict[str, Any]) -> str:
    lines = ["| rows | files | seconds | M rows/s | peak RSS |", "|---:|---:|---:|---:|---:|"]
    for run in report["runs"]:
        lines.append(
            f"| {run['rows']:,} | {run['files']} | {run['seconds']:.1f} | "
            f"{run['rows_per_second'] / 1e6:.2f} | {run['peak_rss_mb']:,.0f} MB |"
        )
    lines.append(f"\nedgewise score --engine {report['engine']}")
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
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="passed to `edgewise score --engine` (default: auto)",
    )
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the native path stage by stage, in-process (default: on)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.files < 1 or args.repeat < 1:
        parser.error("--rows, --files and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report: dict[str, Any] = {"environment": environment(LIBRARIES)}
    if args.memory_check:
        report["memory"] = memory_check(args)
        table = format_memory(report["memory"])
    else:
        report.update(benchmark(args))
        table = format_table(report)
    emit(report, table, args.json)


if __name__ == "__main__":
    main()
