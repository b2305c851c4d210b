"""Where edgewise's native path spends its time, and how hard the tree models work.

Used by `score_vs_peers.py`. `native_breakdown` times each stage of what `edgewise score` does,
in-process, one stage after the other (the CLI overlaps reading and writing with the model):

* read: `ParquetFile.read` of the columns the model needs plus applicant_id, in the batches of
  row groups `edgewise score` reads (`edgewise.score.plan_parts`), opening the files included;
* row checks: `model.layout.check_rows` on each batch;
* model: `model.engine.plan.score(batch, ...)` on the batch already read: the score columns;
* write: the score columns (with applicant_id, model name and version, as `edgewise score
  --keep applicant_id` writes them) through a zstd `ParquetWriter`, one file per part.

`node_visits` counts, with scikit-learn on a sample of rows, the tree nodes each row passes
through: for each tree the depth of the leaf the row reaches, summed over the trees. Together
with the model step's throughput that gives node visits per second per core, the figure to
hold against what one core can do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tree_visits import sklearn_tree_visits

from edgewise import Model
from edgewise._core import ParquetFile, ParquetWriter
from edgewise.datasets import FEATURES
from edgewise.exceptions import UnsupportedModelError
from edgewise.scoring import plan_parts

STAGES = ("read", "row checks", "model", "write")
KEEP = "applicant_id"
SAMPLE_ROWS = 20_000


def native_breakdown(
    bundle: Path, inputs: Sequence[Path], out: Path, threads: int, batch_rows: int
) -> dict[str, Any]:
    """Seconds and rows/s of each stage of the native path; {"skipped": why} when the native
    engine cannot load the bundle's graph."""
    try:
        model = Model.load(bundle, threads=threads, engine="native")
    except UnsupportedModelError as exc:
        return {"skipped": f"the native engine cannot run this bundle: {exc}"}
    plan = model.engine.plan  # type: ignore[attr-defined]
    columns = list(dict.fromkeys([*model.layout.columns, KEEP]))
    dictionary = [c.name for c in model.schema.columns if c.kind == "string"]
    constants: list[tuple[str, Any]] = [
        ("model_name", model.name),
        ("model_version", model.version),
    ]
    out.mkdir(parents=True, exist_ok=True)
    seconds = dict.fromkeys(STAGES, 0.0)
    rows = 0

    started = time.perf_counter()
    files = [ParquetFile(path, threads) for path in inputs]
    parts = plan_parts(files, batch_rows, 4 * 1024 * 1024)
    seconds["read"] += time.perf_counter() - started
    for part in parts:
        writer = ParquetWriter(out / part.name, "zstd", threads)
        source = str(inputs[part.file_index])
        for row_groups in part.row_groups:
            started = time.perf_counter()
            batch = files[part.file_index].read(list(row_groups), columns, dictionary)
            read = time.perf_counter()
            rejected = model.layout.check_rows(batch, source).rejected_rows
            checked = time.perf_counter()
            if rejected:
                raise SystemExit(f"{source}: {len(rejected)} rows rejected by the row checks")
            scores = plan.score(batch, model.outputs.column_sources(), threads)
            ran = time.perf_counter()
            writer.write(batch.select([KEEP]).append_columns([scores]).with_columns(constants))
            written = time.perf_counter()
            seconds["read"] += read - started
            seconds["row checks"] += checked - read
            seconds["model"] += ran - checked
            seconds["write"] += written - ran
            rows += batch.num_rows
        started = time.perf_counter()
        writer.close()
        seconds["write"] += time.perf_counter() - started
    return {
        "rows": rows,
        "threads": threads,
        "stages": {
            stage: {"seconds": s, "rows_per_second": round(rows / s) if s > 0 else None}
            for stage, s in seconds.items()
        },
        "total_seconds": sum(seconds.values()),
    }


def best_breakdown(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per stage, the fastest of several runs of `native_breakdown`."""
    if "skipped" in runs[0]:
        return runs[0]
    rows = runs[0]["rows"]
    stages = {}
    for stage in STAGES:
        best = min(run["stages"][stage]["seconds"] for run in runs)
        stages[stage] = {"seconds": best, "rows_per_second": round(rows / best) if best else None}
    return {
        **runs[0],
        "stages": stages,
        "total_seconds": sum(s["seconds"] for s in stages.values()),
        "runs": len(runs),
    }


# --- node visits of tree models ----------------------------------------------------------------


def sample_frame(path: Path, rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """The first `rows` rows of an input file (rows the models were not trained on)."""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows, columns=FEATURES))
    return batch.to_pandas()


def node_visits(pipeline: Any, frame: pd.DataFrame) -> dict[str, Any] | None:
    """Mean node visits per row (depth of the leaf reached, summed over the trees) of the
    pipeline's final estimator on `frame`; None when it is not a tree model."""
    estimator = pipeline[-1]
    features = pipeline[:-1].transform(frame[FEATURES])
    if hasattr(features, "toarray"):
        features = features.toarray()
    if hasattr(estimator, "_predictors"):
        visits, trees = _hist_gradient_boosting_visits(estimator, np.asarray(features, np.float64))
    elif hasattr(estimator, "tree_") or hasattr(estimator, "estimators_"):
        visits, trees = sklearn_tree_visits(estimator, features)
    else:
        return None
    return {
        "sample_rows": len(frame),
        "trees": trees,
        "visits_per_row": float(visits.mean()),
        "mean_leaf_depth": float(visits.mean() / trees),
    }


def _hist_gradient_boosting_visits(estimator: Any, features: np.ndarray) -> tuple[np.ndarray, int]:
    """Walk every predictor's `nodes` as `_predictor.pyx` does (NaN follows
    missing_go_to_left, else x <= num_threshold goes left), counting the steps; the leaf values
    summed must give back `decision_function`, which checks the walk."""
    if estimator._preprocessor is not None:
        raise SystemExit("node visits: HistGradientBoosting with categorical features")
    rows = len(features)
    raw = np.tile(np.asarray(estimator._baseline_prediction, np.float64), (rows, 1))
    visits = np.zeros(rows)
    trees = 0
    for iteration in estimator._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            is_leaf = nodes["is_leaf"].astype(bool)  # uint8: `~` would not negate it
            if nodes["is_categorical"].any():
                raise SystemExit("node visits: HistGradientBoosting with categorical splits")
            node = np.zeros(rows, dtype=np.int64)
            active = np.flatnonzero(~is_leaf[node])
            while active.size:
                current = node[active]
                value = features[active, nodes["feature_idx"][current]]
                left = np.where(
                    np.isnan(value),
                    nodes["missing_go_to_left"][current].astype(bool),
                    value <= nodes["num_threshold"][current],
                )
                node[active] = np.where(left, nodes["left"][current], nodes["right"][current])
                visits[active] += 1
                active = active[~is_leaf[node[active]]]
            raw[:, k] += nodes["value"][node]
            trees += 1
    expected = np.asarray(estimator.decision_function(features), np.float64).reshape(rows, -1)
    if not np.allclose(raw, expected, rtol=1e-12, atol=1e-12):
        raise SystemExit(
            "node visits: the walk of HistGradientBoosting's nodes does not reproduce "
            f"decision_function (max |diff| {np.abs(raw - expected).max():.3g})"
        )
    return visits, trees


def visit_rate(visits: dict[str, Any], model_rows_per_second: float, cores: int) -> dict[str, Any]:
    """Node visits per second per core of the model step, and nanoseconds per visit."""
    per_core = model_rows_per_second * visits["visits_per_row"] / cores
    return {**visits, "visits_per_second_per_core": per_core, "ns_per_visit": 1e9 / per_core}
