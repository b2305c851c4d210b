"""The random forest's model step against dedicated tree-inference engines, one thread each.

`score_vs_peers.py` measures Parquet to Parquet against what a user scoring files would write
(pandas + scikit-learn, polars + onnxruntime). This one isolates the model step, where the
random forest (100 trees, depth 12, from `edgewise.datasets.credit_pipeline`) spends its time,
and holds it against the engines built for nothing but tree inference, on the same float32
feature matrix (the pipeline's own preprocessing of the first --rows rows of a generated
Parquet file, untimed), one thread each:

* edgewise: the bare forest compiled to a bundle (`compile_pipeline`), `Model.predict` on a
  polars frame of the matrix, `threads=1`, native engine;
* onnxruntime: skl2onnx's float32 conversion of the forest (zipmap=False), one intra-op thread;
* scikit-learn: `predict_proba` with n_jobs=1;
* tl2cgen: the same forest compiled to C by treelite + tl2cgen and gcc (once, kept under
  DATA_DIR/forest-engines), `predict` on one thread;
* oneDAL (scikit-learn-intelex): it predicts only forests it trained itself, so it runs a
  forest of the same hyperparameters trained on the same rows (its node count is shown).

The last two run in their own environment (DATA_DIR/venvs/forest, `_forest_peer.py`). Each
engine's largest probability difference from scikit-learn is checked: edgewise must stay within
1e-6 or the run fails. Node visits per row are counted with scikit-learn (`tree_visits`), so
the table gives each engine's node visits per second on one core, and its time over edgewise's.

    .venv/bin/python benches/forest_engines.py                  # 1M rows, best of 3
    .venv/bin/python benches/forest_engines.py --rows 200000 --repeat 1 --json
"""

from __future__ import annotations

import argparse
import copy
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
import polars as pl
from peers import Peer
from report import emit, environment, log, markdown_table
from score_vs_peers import TRAIN_ROWS, ensure_data, train_models
from skl2onnx import to_onnx
from timing import best_of
from tree_visits import sklearn_tree_visits

from edgewise import Model
from edgewise.compile import compile_pipeline
from edgewise.datasets import FEATURES, TARGET, credit_frame

TOLERANCE = 1e-6  # edgewise against scikit-learn, every probability
CHECK_ROWS = 20_000  # rows compared with scikit-learn, and counted for node visits
LIBRARIES = ("edgewise", "numpy", "polars", "scikit-learn", "skl2onnx", "onnxruntime")


def forest_peer() -> Peer:
    """The tl2cgen and oneDAL environment; scikit-learn and numpy pinned to this environment's
    versions, so that the pickled forest loads there."""
    return Peer(
        "forest",
        "_forest_peer.py",
        (
            f"scikit-learn=={version('scikit-learn')}",
            f"numpy=={version('numpy')}",
            "treelite==4.8.1",
            "tl2cgen==1.0.0",
            "scikit-learn-intelex==2026.2.0",
            "daal==2026.2.0",
        ),
    )


def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The forest, the float32 matrices (scored rows, training rows) and where they are saved."""
    directory: Path = args.data_dir / "forest-engines"
    directory.mkdir(parents=True, exist_ok=True)
    pipeline_path = args.data_dir / "models" / "credit-random_forest.joblib"
    if not pipeline_path.exists():
        train_models(["random_forest"], args.data_dir / "models")
    pipeline = joblib.load(pipeline_path)
    (source,) = ensure_data(args.data_dir / f"rows-{args.rows}-files-1", args.rows, 1)
    frame = pl.read_parquet(source, columns=FEATURES).to_pandas()
    train = credit_frame(TRAIN_ROWS, seed=0)
    paths = {name: directory / f"{name}.npy" for name in ("x", "train_x", "train_y")}
    x = np.ascontiguousarray(pipeline[:-1].transform(frame), dtype=np.float32)
    np.save(paths["x"], x)
    np.save(paths["train_x"], np.asarray(pipeline[:-1].transform(train[FEATURES]), np.float32))
    np.save(paths["train_y"], np.asarray(train[TARGET]))
    return {
        "directory": directory,
        "pipeline": pipeline_path,
        "forest": pipeline[-1],
        "x": x,
        "paths": paths,
    }


def run_edgewise(forest: Any, x: np.ndarray, directory: Path, repeat: int) -> tuple[float, Any]:
    """The bare forest as a bundle (its input one float column per feature), one thread."""
    names = [f"f{i}" for i in range(x.shape[1])]
    bare = copy.deepcopy(forest)
    bare.feature_names_in_ = np.array(names, dtype=object)
    compiled = compile_pipeline(
        bare, pl.DataFrame(x[:TRAIN_ROWS], schema=names).to_pandas(), name="forest", version=1
    )
    model = Model.load(compiled.bundle.write(directory / "forest.ewb"), threads=1, engine="native")
    frame = pl.DataFrame(x, schema=names)
    seconds, scores = best_of(repeat, lambda: model.predict(frame))
    return seconds, pl.DataFrame(scores).select(pl.col("^proba_.*$")).to_numpy()


def run_onnxruntime(forest: Any, x: np.ndarray, repeat: int) -> tuple[float, Any]:
    graph = to_onnx(forest, x[:1], options={"zipmap": False})
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(graph.SerializeToString(), options)
    name = session.get_inputs()[0].name
    seconds, outputs = best_of(repeat, lambda: session.run(["probabilities"], {name: x}))
    return seconds, outputs[0]


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    prepared = prepare(args)
    forest, x = prepared["forest"], prepared["x"]
    expected = forest.predict_proba(x[:CHECK_ROWS])
    visits = float(sklearn_tree_visits(forest, x[:CHECK_ROWS])[0].mean())
    results = []

    def record(tool: str, seconds: float, proba: Any, **extra: Any) -> None:
        diff = float(np.abs(np.asarray(proba)[:CHECK_ROWS] - expected).max())
        log(f"  {tool:<44} {seconds:8.3f} s  max |diff| {diff:.2g}")
        results.append(
            {"tool": tool, "seconds": seconds, "max_diff": diff, "visits_per_row": visits, **extra}
        )

    log(f"{len(x):,} rows x {x.shape[1]} features, {visits:.0f} node visits a row")
    record("edgewise", *run_edgewise(forest, x, prepared["directory"], args.repeat))
    if results[0]["max_diff"] > TOLERANCE:
        raise SystemExit(f"edgewise differs from scikit-learn by {results[0]['max_diff']:.3g}")
    record(f"onnxruntime {ort.__version__}", *run_onnxruntime(forest, x, args.repeat))
    forest.n_jobs = 1
    record(
        f"scikit-learn {version('scikit-learn')}",
        *best_of(args.repeat, lambda: forest.predict_proba(x)),
    )
    if args.peers:
        paths = prepared["paths"]
        found = forest_peer().run(
            args.data_dir,
            [
                *("--model", str(prepared["pipeline"]), "--features", str(paths["x"])),
                *("--train", str(paths["train_x"]), "--train-target", str(paths["train_y"])),
                *("--cache", str(prepared["directory"]), "--repeat", str(args.repeat)),
                *("--check-rows", str(CHECK_ROWS)),
            ],
        )
        for peer in found.values():
            diff = "-" if peer["max_diff"] is None else f"{peer['max_diff']:.2g}"
            log(f"  {peer['tool']:<44} {peer['seconds']:8.3f} s  max |diff| {diff}")
            results.append(peer)
    for result in results:
        result["rows"] = len(x)
        result["visits_per_second"] = len(x) * result["visits_per_row"] / result["seconds"]
        result["over_edgewise"] = result["seconds"] / results[0]["seconds"]
    return {"rows": len(x), "features": x.shape[1], "results": results}


def format_table(report: dict[str, Any]) -> str:
    header = ["engine (one thread)", "seconds", "M rows/s", "M node visits/s", "time / edgewise"]
    lines = []
    for result in report["results"]:
        tool = result["tool"] + ("" if result.get("same_forest", True) else " *")
        lines.append(
            [
                tool,
                f"{result['seconds']:.3f}",
                f"{result['rows'] / result['seconds'] / 1e6:.3f}",
                f"{result['visits_per_second'] / 1e6:,.0f}",
                f"{result['over_edgewise']:.2f}x",
            ]
        )
    notes = [
        "",
        f"{report['rows']:,} rows x {report['features']} float32 features, one thread each, "
        f"best of the runs; {report['environment']['date']}, load "
        f"{report['environment']['load_average']}.",
    ]
    if any(not result.get("same_forest", True) for result in report["results"]):
        notes.append(
            "* its own forest of the same hyperparameters (it predicts only forests it trained)"
        )
    return "\n".join(markdown_table(header, lines, right={1, 2, 3, 4}) + notes)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=Path("bench-data"))
    parser.add_argument(
        "--peers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tl2cgen and oneDAL, in their own environment (default: on)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the numbers as JSON (the table goes to stderr)"
    )
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    return args


def main() -> None:
    args = parse_args()
    report: dict[str, Any] = {"environment": environment(LIBRARIES)}
    report.update(benchmark(args))
    emit(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
