"""The fused linear kernel against the node-by-node executor it replaces (hypothesis).

Each example fits a random linear pipeline (logistic regression with two to five classes or a
ridge regression, behind a random choice of imputation, scaling and one-hot encoding), compiles
it, and runs the same Arrow batches (NaN and null numbers, unseen and null categories, empty and
one-row batches) through the plan with and without fusion: the outputs must be bit-identical,
and the fused plan must have fused the chain.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, OneHotEncoder, StandardScaler
from test_native_pipelines import _spoil as spoil_values

from edgewise import Batch, Model
from edgewise._core import Plan
from edgewise.compile import compile_pipeline
from edgewise.datasets import CATEGORICAL, NUMERIC, credit_frame

SCALERS = {
    "standard": lambda: StandardScaler(),
    "no_mean": lambda: StandardScaler(with_mean=False),
    "max_abs": lambda: MaxAbsScaler(),
}


def _pipeline(case: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    numeric_steps = [SimpleImputer(strategy=case["imputer"])]
    if case["scaler"] is not None:
        numeric_steps.append(SCALERS[case["scaler"]]())
    numeric = NUMERIC[: case["numeric"]]
    categorical = CATEGORICAL[: case["categorical"]]
    parts: list[tuple[str, Any, list[str]]] = [("num", make_pipeline(*numeric_steps), numeric)]
    if categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"), categorical))
    if case["task"] == "regression":
        estimator: Any = Ridge(alpha=case["alpha"])
    else:
        estimator = LogisticRegression(max_iter=300, C=case["alpha"])
    return Pipeline([("columns", ColumnTransformer(parts)), ("model", estimator)]), [
        *numeric,
        *categorical,
    ]


def _spoil(rows: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """The agreement suite's NaN and unseen categories, plus null categories."""
    rows = spoil_values(rows, rng, share)
    for column in CATEGORICAL:
        rows.loc[rng.random(len(rows)) < share / 2, column] = None
    return rows


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    task = draw(st.sampled_from(["binary", "multiclass", "regression"]))
    return {
        "task": task,
        "classes": draw(st.integers(3, 5)) if task == "multiclass" else 2,
        "imputer": draw(st.sampled_from(["mean", "median", "most_frequent"])),
        "scaler": draw(st.sampled_from([None, "standard", "no_mean", "max_abs"])),
        "numeric": draw(st.integers(1, len(NUMERIC))),
        "categorical": draw(st.integers(0, len(CATEGORICAL))),
        "alpha": draw(st.sampled_from([0.01, 1.0, 100.0])),
        "seed": draw(st.integers(0, 2**16)),
        "spoil": draw(st.sampled_from([0.0, 0.1, 0.6])),
        "batches": draw(st.lists(st.integers(0, 3000), min_size=1, max_size=3)),
    }


# Unscaled features can stop lbfgs before it converges: the fit is still a linear model.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@settings(max_examples=max(10, settings().max_examples // 10))
@given(case=cases())
def test_fused_linear_kernel_matches_the_node_by_node_plan(case: dict[str, Any]) -> None:
    rng = np.random.default_rng(case["seed"])
    train = credit_frame(500, seed=case["seed"])
    pipeline, features = _pipeline(case)
    if case["task"] == "regression":
        target = train["income"].fillna(0) * rng.uniform(0.5, 2) + train["balance"].fillna(0)
    else:
        score = train["debt_ratio"].fillna(0) + rng.normal(0, 0.3, len(train))
        target = pd.qcut(score, case["classes"], labels=False)
    pipeline.fit(train[features], target)
    result = compile_pipeline(
        pipeline, train.assign(target=target), name="fusion", version=1, sample_rows=200
    )
    model = Model.from_bundle(result.bundle, engine="native")
    fused = model.engine.plan  # type: ignore[attr-defined]
    inputs = [(i["name"], i["type"], list(i["columns"])) for i in result.bundle.manifest["inputs"]]
    unfused = Plan(result.bundle.model, inputs, fuse=False)
    assert unfused.fused == []
    # skl2onnx converts MaxAbsScaler pipelines to the float32 ai.onnx.ml operators (Imputer,
    # Scaler, LinearClassifier), which keep one kernel per node.
    assert len(fused.fused) == (case["scaler"] != "max_abs"), json.dumps(case)

    fresh = _spoil(credit_frame(sum(case["batches"]), seed=case["seed"] + 1), rng, case["spoil"])
    start = 0
    for rows in case["batches"]:
        batch = Batch.from_arrow(fresh.iloc[start : start + rows][features])
        start += rows
        for threads in (1, 2):
            got, want = fused.run(batch, threads), unfused.run(batch, threads)
            assert got.keys() == want.keys()
            for name in want:
                assert got[name].dtype == want[name].dtype
                # Bit for bit: NaN where the reference has NaN, every other value equal.
                np.testing.assert_array_equal(got[name], want[name], strict=True)


def _linear_graph(outputs: list[str]) -> bytes:
    """x (float64, two columns) -> Sub -> Div -> MatMul -> Add, with `outputs` exposed."""
    from onnx import TensorProto, helper, numpy_helper

    def constant(name: str, values: list[float], shape: list[int]) -> Any:
        return numpy_helper.from_array(np.array(values, np.float64).reshape(shape), name)

    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "coef"], ["product"]),
        helper.make_node("Add", ["product", "intercept"], ["scores"]),
    ]
    initializers = [
        constant("mean", [0.5, -2.0], [2]),
        constant("scale", [3.0, 0.1], [2]),
        constant("coef", [1.5, -1.5, 0.25, -0.25], [2, 2]),
        constant("intercept", [0.1, -0.1], [1, 2]),
    ]
    value = {
        name: helper.make_tensor_value_info(name, TensorProto.DOUBLE, [None, 2])
        for name in ["x", "scaled", "scores"]
    }
    graph = helper.make_graph(nodes, "g", [value["x"]], [value[o] for o in outputs], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def test_a_chain_whose_inner_value_is_read_elsewhere_is_not_fused() -> None:
    x = np.array([[1.0, 2.0], [np.nan, -3.5], [0.0, 1e300]])
    alone = Plan(_linear_graph(["scores"]))
    assert len(alone.fused) == 1
    exposed = Plan(_linear_graph(["scores", "scaled"]))
    assert exposed.fused == []
    got = alone.run_tensors({"x": x})["scores"]
    want = Plan(_linear_graph(["scores"]), fuse=False).run_tensors({"x": x})["scores"]
    np.testing.assert_array_equal(got, want, strict=True)
    np.testing.assert_array_equal(exposed.run_tensors({"x": x})["scores"], want, strict=True)
