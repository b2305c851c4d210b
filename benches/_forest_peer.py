"""Dedicated tree-inference engines as peers of the random forest's model step, run by
forest_engines.py in their own virtual environment (treelite, tl2cgen and
scikit-learn-intelex do not belong in the project's).

* tl2cgen: the forest (`--model`, a joblib dump of a scikit-learn pipeline or forest) imported
  by treelite and compiled to a shared library by gcc with tl2cgen's speed options (quantized
  thresholds, branches annotated from the `--train` rows), once (kept in `--cache`); `predict`
  on one thread, timed;
* oneDAL through scikit-learn-intelex: it predicts only forests it trained, so a forest of the
  same shape (the estimator's own hyperparameters) is trained on `--train` rows with the
  patched `RandomForestClassifier`; `predict_proba` with n_jobs=1, timed.

Each gets the float32 feature matrix `--features` and prints its best time of `--repeat`, its
largest difference from scikit-learn's `predict_proba` (tl2cgen only: it runs the same forest)
and, counted as `breakdown.py` does (`tree_visits`), the node visits per row of its forest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from timing import best_of
from tree_visits import sklearn_tree_visits

VISIT_ROWS = 20_000


def visits_per_row(forest: Any, x: np.ndarray) -> float:
    return float(sklearn_tree_visits(forest, x[:VISIT_ROWS])[0].mean())


def tl2cgen_engine(forest: Any, model: Path, x: np.ndarray, args: argparse.Namespace) -> dict:
    """tl2cgen as its documentation tunes it: thresholds quantized to integers, and branches
    annotated with how often the training rows take them (for the compiler's likely/unlikely
    hints)."""
    import tl2cgen
    import treelite

    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
    library = args.cache / f"tl2cgen-{version('tl2cgen')}-{digest}.so"
    compile_seconds = None
    if not library.exists():
        started = time.perf_counter()
        imported = treelite.sklearn.import_model(forest)
        annotations = library.with_suffix(".branches.json")
        training = tl2cgen.DMatrix(np.load(args.train), dtype="float32")
        tl2cgen.annotate_branch(imported, training, annotations, nthread=2)
        partial = library.with_suffix(".partial.so")
        parameters = {"parallel_comp": 200, "quantize": 1, "annotate_in": str(annotations)}
        tl2cgen.export_lib(imported, "gcc", partial, parameters, nthread=2)
        partial.rename(library)
        compile_seconds = time.perf_counter() - started
    predictor = tl2cgen.Predictor(str(library), nthread=1)
    matrix = tl2cgen.DMatrix(x, dtype="float32")
    seconds, scores = best_of(args.repeat, lambda: predictor.predict(matrix))
    proba = np.asarray(scores).reshape(len(x), -1)
    expected = forest.predict_proba(x[: args.check_rows])
    return {
        "tool": f"tl2cgen {version('tl2cgen')} (treelite {version('treelite')}, gcc)",
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "max_diff": float(np.abs(proba[: args.check_rows] - expected).max()),
        "visits_per_row": visits_per_row(forest, x),
        "same_forest": True,
    }


def onedal_engine(forest: Any, x: np.ndarray, args: argparse.Namespace) -> dict:
    from sklearnex.ensemble import RandomForestClassifier

    train_x, train_y = np.load(args.train), np.load(args.train_target, allow_pickle=True)
    parameters = {
        key: value
        for key, value in forest.get_params().items()
        if key in ("n_estimators", "max_depth", "random_state", "criterion", "max_features")
    }
    own = RandomForestClassifier(**parameters, n_jobs=1).fit(train_x, train_y)
    seconds, _ = best_of(args.repeat, lambda: own.predict_proba(x))
    # No check against scikit-learn: the forest is another one. (Its trees exported as
    # scikit-learn estimators, `estimators_`, which give the node visits, agree with its labels
    # on 99.7% of rows but not with its probabilities, up to 0.28 apart.)
    return {
        "tool": f"oneDAL {version('daal')} (sklearnex {version('scikit-learn-intelex')})",
        "seconds": seconds,
        "max_diff": None,
        "visits_per_row": visits_per_row(own, x),
        "nodes": int(sum(tree.tree_.node_count for tree in own.estimators_)),
        "same_forest": False,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--train-target", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check-rows", type=int, default=20_000)
    args = parser.parse_args()
    loaded = joblib.load(args.model)
    forest = loaded[-1] if hasattr(loaded, "steps") else loaded
    x = np.load(args.features)
    # treelite logs to stdout, which carries the JSON: point it at stderr while working.
    report, stdout = os.dup(1), sys.stdout.fileno()
    os.dup2(sys.stderr.fileno(), stdout)
    try:
        found = {
            "tl2cgen": tl2cgen_engine(forest, args.model, x, args),
            "onedal": onedal_engine(forest, x, args),
        }
    finally:
        sys.stdout.flush()
        os.dup2(report, stdout)
    print(json.dumps(found))


if __name__ == "__main__":
    main()
