"""The fused feature matrix of tree pipelines against the node-by-node executor it replaces.

Each example fits a random tree pipeline (random forest or gradient boosting, classifier or
regressor, behind a random choice of imputation, scaling and one-hot encoding), compiles it,
and runs the same Arrow batches (NaN and null numbers, unseen and null categories, empty and
one-row batches) through the plan with and without fusion: the outputs must be bit-identical,
and the fused plan must have built the ensemble's input in one kernel. Hand-built graphs check
what skl2onnx does not emit here: a float32 matrix, a one-hot column picked alone, and a matrix
that another node also reads.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from test_fusion import _spoil as spoil
from test_fusion import (
    assert_same_on_batches,
    assert_same_outputs,
    compile_both,
    preprocessed,
    run_script,
)

from edgewise._core import Plan
from edgewise.datasets import CATEGORICAL, NUMERIC, credit_frame

ESTIMATORS = {
    ("forest", "classifier"): lambda: RandomForestClassifier(6, max_depth=6, random_state=0),
    ("forest", "regressor"): lambda: RandomForestRegressor(6, max_depth=6, random_state=0),
    ("boosting", "classifier"): lambda: HistGradientBoostingClassifier(max_iter=8),
    ("boosting", "regressor"): lambda: HistGradientBoostingRegressor(max_iter=8),
}


def _pipeline(case: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    estimator = ESTIMATORS[case["model"], case["task"]]()
    # Gradient boosting takes dense input only.
    return preprocessed(
        case, estimator, OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    )


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "model": draw(st.sampled_from(["forest", "boosting"])),
        "task": draw(st.sampled_from(["classifier", "regressor"])),
        "imputer": draw(st.sampled_from(["mean", "median", "most_frequent"])),
        "scaler": draw(st.sampled_from([None, "standard", "no_mean"])),
        "numeric": draw(st.integers(1, len(NUMERIC))),
        "categorical": draw(st.integers(0, len(CATEGORICAL))),
        "seed": draw(st.integers(0, 2**16)),
        "spoil": draw(st.sampled_from([0.0, 0.1, 0.6])),
        # Always an empty and a one-row batch, then batches of one or several blocks.
        "batches": [0, 1, *draw(st.lists(st.integers(0, 3000), min_size=1, max_size=2))],
    }


@settings(max_examples=max(10, settings().max_examples // 10), deadline=None)
@given(case=cases())
def test_fused_feature_matrix_matches_the_node_by_node_plan(case: dict[str, Any]) -> None:
    rng = np.random.default_rng(case["seed"])
    train = credit_frame(400, seed=case["seed"])
    pipeline, features = _pipeline(case)
    if case["task"] == "regressor":
        target = train["income"].fillna(0) + train["balance"].fillna(0)
    else:
        score = train["debt_ratio"].fillna(0) + rng.normal(0, 0.3, len(train))
        target = pd.qcut(score, 2, labels=False)
    pipeline.fit(train[features], target)
    fused, unfused = compile_both(pipeline, train, target)
    assert len(fused.fused) == 1, json.dumps(case)
    assert fused.fused[0].startswith("feature matrix"), fused.fused

    fresh = spoil(credit_frame(sum(case["batches"]), seed=case["seed"] + 1), rng, case["spoil"])
    assert_same_on_batches(fused, unfused, fresh[features], case["batches"])


def _tree_graph(outputs: list[str]) -> bytes:
    """x (float64, two columns) -> Sub -> Cast(float32), and one column of a one-hot string
    column picked with Gather -> Cast(float32); Concat -> a float32 TreeEnsembleRegressor."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Cast", ["centred"], ["narrow"], to=TensorProto.FLOAT),
        helper.make_node(
            "OneHotEncoder", ["cat"], ["hot"], domain="ai.onnx.ml", cats_strings=["u", "v", "w"]
        ),
        helper.make_node("Reshape", ["hot", "flat3"], ["hot2"]),
        helper.make_node("Gather", ["hot2", "pick"], ["picked"], axis=1),
        helper.make_node("Concat", ["narrow", "picked"], ["features"], axis=1),
        helper.make_node(
            "TreeEnsembleRegressor",
            ["features"],
            ["value"],
            domain="ai.onnx.ml",
            n_targets=1,
            # Root: feature 0 <= 0.1; its left child: feature 2 (the picked "w") <= 0.5.
            nodes_treeids=[0, 0, 0, 0, 0],
            nodes_nodeids=[0, 1, 2, 3, 4],
            nodes_featureids=[0, 2, 0, 0, 1],
            nodes_values=[0.1, 0.5, 0.0, 0.0, 0.0],
            nodes_modes=["BRANCH_LEQ", "BRANCH_LEQ", "LEAF", "LEAF", "LEAF"],
            nodes_truenodeids=[1, 2, 0, 0, 0],
            nodes_falsenodeids=[4, 3, 0, 0, 0],
            nodes_missing_value_tracks_true=[1, 0, 0, 0, 0],
            target_treeids=[0, 0, 0],
            target_nodeids=[2, 3, 4],
            target_ids=[0, 0, 0],
            target_weights=[1.0, 2.0, 3.0],
        ),
    ]
    initializers = [
        numpy_helper.from_array(np.array([0.2, -1.0]), "mean"),
        numpy_helper.from_array(np.array([-1, 3], np.int64), "flat3"),
        numpy_helper.from_array(np.array([2], np.int64), "pick"),
    ]
    values = {
        "x": helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2]),
        "cat": helper.make_tensor_value_info("cat", TensorProto.STRING, [None, 1]),
        "narrow": helper.make_tensor_value_info("narrow", TensorProto.FLOAT, [None, 2]),
        "features": helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 3]),
        "value": helper.make_tensor_value_info("value", TensorProto.FLOAT, [None, 1]),
    }
    graph = helper.make_graph(
        nodes, "g", [values["x"], values["cat"]], [values[o] for o in outputs], initializers
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    return bytes(model.SerializeToString())


def _tree_inputs() -> dict[str, Any]:
    x = np.array(
        [
            [0.3, 5.0],
            [0.2, np.nan],
            [np.nan, -1.0],
            [0.3000000001, 0.0],
            [-np.inf, 1e300],
            [1e40, 0],
        ],
    )
    cat = np.array([["w"], ["u"], ["zz"], ["w"], ["v"], ["w"]], dtype=object)
    return {"x": x, "cat": cat}


def test_a_float32_matrix_with_a_picked_one_hot_column_is_fused_bit_for_bit() -> None:
    plan = Plan(_tree_graph(["value"]))
    assert len(plan.fused) == 1 and plan.fused[0].startswith("feature matrix 'features'")
    got = plan.run_tensors(_tree_inputs())
    want = Plan(_tree_graph(["value"]), fuse=False).run_tensors(_tree_inputs())
    assert_same_outputs(got, want)
    # Rows 0 and 3 differ only below float32's precision: the rounding step is in the matrix.
    assert got["value"][0] == got["value"][3]


@pytest.mark.parametrize(
    ("outputs", "fused"), [(["value", "features"], True), (["value", "narrow"], False)]
)
def test_a_matrix_is_fused_unless_a_value_inside_it_is_read_elsewhere(
    outputs: list[str], fused: bool
) -> None:
    plan = Plan(_tree_graph(outputs))
    assert len(plan.fused) == fused
    want = Plan(_tree_graph(outputs), fuse=False).run_tensors(_tree_inputs())
    assert_same_outputs(plan.run_tensors(_tree_inputs()), want)


WALK_CHECK = """
import hashlib, sys
sys.path.insert(0, {tests!r})
import numpy as np
from test_fusion import preprocessed
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import OneHotEncoder
from edgewise import Batch, Model
from edgewise.compile import compile_pipeline
from edgewise.datasets import CATEGORICAL, NUMERIC, credit_frame

case = {{"imputer": "median", "scaler": "standard", "numeric": len(NUMERIC),
         "categorical": len(CATEGORICAL)}}
forest = RandomForestClassifier(12, max_depth=9, random_state=0)
pipeline, features = preprocessed(case, forest, OneHotEncoder(handle_unknown="ignore"))
train = credit_frame(2000, seed=3)
target = (train["debt_ratio"].fillna(0) > 0.4).astype(int)
pipeline.fit(train[features], target)
result = compile_pipeline(pipeline, train.assign(target=target), name="walk", version=1)
plan = Model.from_bundle(result.bundle, engine="native").engine.plan
rows = credit_frame(5000, seed=4)[features]
outputs = plan.run(Batch.from_arrow(rows), 2)
digest = hashlib.sha256()
for name in sorted(outputs):
    digest.update(name.encode() + np.ascontiguousarray(outputs[name]).tobytes())
expected = pipeline.predict_proba(rows)
got = next(v for v in outputs.values() if v.ndim == 2 and v.shape[1] == 2)
assert np.abs(got - expected).max() < 1e-12
print(digest.hexdigest())
"""


def test_every_forest_walk_gives_the_same_scores() -> None:
    """EDGEWISE_TREE_WALK picks the random forest's fused walk (gathers and vector tops only
    with AVX-512, else chains): scalar chains, vector gathers and chains after vector tops give
    the same scores, bit for bit, and scikit-learn's."""
    digests = {
        walk: run_script(WALK_CHECK, {"EDGEWISE_TREE_WALK": walk}, timeout=300)
        for walk in ("chains", "gathers", "tops")
    }
    assert len(set(digests.values())) == 1, digests
