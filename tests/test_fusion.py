"""The fused linear kernel against the node-by-node executor it replaces (hypothesis).

Each example fits a random linear pipeline (logistic regression with two to five classes or a
ridge regression, behind a random choice of imputation, scaling and one-hot encoding), compiles
it, and runs the same Arrow batches (NaN and null numbers, unseen and null categories, empty and
one-row batches) through the plan with and without fusion: the outputs must be bit-identical,
and the fused plan must have fused the chain. Where the nodes after the scores (sigmoid or
softmax, normalisation, argmax, class labels) are a head the fused kernel can compute, the
whole graph runs straight from the Arrow columns; hand-built graphs check the heads skl2onnx
does not emit here (a head value that is also a graph output, string labels, softmax) and
every instruction set the CPU has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    if case["task"] == "regression":
        estimator: Any = Ridge(alpha=case["alpha"])
    else:
        estimator = LogisticRegression(max_iter=300, C=case["alpha"])
    return preprocessed(case, estimator, OneHotEncoder(handle_unknown="ignore"))


def preprocessed(
    case: dict[str, Any], estimator: Any, encoder: OneHotEncoder
) -> tuple[Pipeline, list[str]]:
    """`estimator` behind the case's imputer and scaler for its first numeric columns and
    `encoder` for its first categorical ones; the pipeline and the columns it reads."""
    numeric_steps = [SimpleImputer(strategy=case["imputer"])]
    if case["scaler"] is not None:
        numeric_steps.append(SCALERS[case["scaler"]]())
    numeric = NUMERIC[: case["numeric"]]
    categorical = CATEGORICAL[: case["categorical"]]
    parts: list[tuple[str, Any, list[str]]] = [("num", make_pipeline(*numeric_steps), numeric)]
    if categorical:
        parts.append(("cat", encoder, categorical))
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
        "string_labels": draw(st.booleans()),
        # Always an empty and a one-row batch, then batches of one or several blocks.
        "batches": [0, 1, *draw(st.lists(st.integers(0, 3000), min_size=1, max_size=2))],
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
        if case["string_labels"]:
            target = target.map(lambda c: f"class {c}")
    pipeline.fit(train[features], target)
    fused, unfused = compile_both(pipeline, train, target)
    # skl2onnx converts MaxAbsScaler pipelines to the float32 ai.onnx.ml operators (Imputer,
    # Scaler, LinearClassifier), which keep one kernel per node.
    assert len(fused.fused) == (case["scaler"] != "max_abs"), json.dumps(case)
    # With the fused chain, the head after it runs in the same pass.
    assert all("run straight from the Arrow columns" in f for f in fused.fused), fused.fused

    fresh = _spoil(credit_frame(sum(case["batches"]), seed=case["seed"] + 1), rng, case["spoil"])
    assert_same_on_batches(fused, unfused, fresh[features], case["batches"])


def compile_both(pipeline: Pipeline, train: pd.DataFrame, target: pd.Series) -> tuple[Plan, Plan]:
    """The fitted pipeline's plan as the native engine runs it, and the same graph unfused."""
    result = compile_pipeline(
        pipeline, train.assign(target=target), name="fusion", version=1, sample_rows=200
    )
    fused = Model.from_bundle(result.bundle, engine="native").engine.plan  # type: ignore[attr-defined]
    inputs = [(i["name"], i["type"], list(i["columns"])) for i in result.bundle.manifest["inputs"]]
    unfused = Plan(result.bundle.model, inputs, fuse=False)
    assert unfused.fused == []
    return fused, unfused


def assert_same_on_batches(
    fused: Plan, unfused: Plan, rows: pd.DataFrame, sizes: list[int]
) -> None:
    """Both plans on consecutive batches of `rows` of the given sizes, with 1 and 2 threads."""
    start = 0
    for size in sizes:
        batch = Batch.from_arrow(rows.iloc[start : start + size])
        start += size
        for threads in (1, 2):
            assert_same_outputs(fused.run(batch, threads), unfused.run(batch, threads))


def assert_same_outputs(got: dict[str, Any], want: dict[str, Any]) -> None:
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


def _headed_graph(head: str) -> bytes:
    """Two numeric columns (scaled) and a one-hot string column -> MatMul -> Add -> `head`.

    "binary": sigmoid, normalised by the sum of absolute values (skl2onnx's binary head), the
    argmax picking a string class; the scores and the sigmoid are graph outputs too, and the
    sigmoid is also read by later head nodes. "softmax": softmax over three scores, the argmax
    (keepdims=0) picking int64 classes through Cast, Reshape and Cast.
    """
    from onnx import TensorProto, helper, numpy_helper

    width = 2 if head == "binary" else 3

    def constant(name: str, values: Any, dtype: Any = np.float64) -> Any:
        return numpy_helper.from_array(np.asarray(values, dtype), name)

    rng = np.random.default_rng(7)
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["scaled"]),
        helper.make_node(
            "OneHotEncoder", ["cat"], ["hot"], domain="ai.onnx.ml", cats_strings=["u", "v", "w"]
        ),
        helper.make_node("Reshape", ["hot", "flat3"], ["hot2"]),
        helper.make_node("Cast", ["hot2"], ["hot64"], to=TensorProto.DOUBLE),
        helper.make_node("Concat", ["scaled", "hot64"], ["features"], axis=1),
        helper.make_node("MatMul", ["features", "coef"], ["product"]),
        helper.make_node("Add", ["product", "intercept"], ["scores"]),
    ]
    initializers = [
        constant("mean", [0.5, -2.0]),
        constant("scale", [3.0, 0.1]),
        constant("flat3", [-1, 3], np.int64),
        constant("coef", rng.normal(0, 2, (5, width))),
        constant("intercept", rng.normal(0, 1, (1, width))),
    ]
    if head == "binary":
        nodes += [
            helper.make_node("ArgMax", ["scores"], ["best"], axis=1),
            helper.make_node("Sigmoid", ["scores"], ["sig"]),
            helper.make_node("Abs", ["sig"], ["sig_abs"]),
            helper.make_node("ReduceSum", ["sig_abs", "axis"], ["norm"], keepdims=1),
            helper.make_node("Div", ["sig", "norm"], ["probabilities"]),
            helper.make_node(
                "ArrayFeatureExtractor", ["classes", "best"], ["picked"], domain="ai.onnx.ml"
            ),
            helper.make_node("Reshape", ["picked", "flat"], ["label"]),
        ]
        initializers += [
            constant("axis", [1], np.int64),
            numpy_helper.from_array(np.array(["no", "yes"], dtype=object), "classes"),
            constant("flat", [-1], np.int64),
        ]
        outputs = [
            ("label", TensorProto.STRING, [None]),
            ("probabilities", TensorProto.DOUBLE, [None, 2]),
            ("sig", TensorProto.DOUBLE, [None, 2]),
            ("scores", TensorProto.DOUBLE, [None, 2]),
        ]
    else:
        nodes += [
            helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1),
            helper.make_node("ArgMax", ["probabilities"], ["best"], axis=1, keepdims=0),
            helper.make_node(
                "ArrayFeatureExtractor", ["classes", "best"], ["picked"], domain="ai.onnx.ml"
            ),
            helper.make_node("Cast", ["picked"], ["picked64"], to=TensorProto.DOUBLE),
            helper.make_node("Reshape", ["picked64", "flat"], ["flat_label"]),
            helper.make_node("Cast", ["flat_label"], ["label"], to=TensorProto.INT64),
        ]
        initializers += [
            constant("classes", [10, 20, 30], np.int64),
            constant("flat", [-1], np.int64),
        ]
        outputs = [
            ("label", TensorProto.INT64, [None]),
            ("probabilities", TensorProto.DOUBLE, [None, 3]),
        ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 2]),
        helper.make_tensor_value_info("cat", TensorProto.STRING, [None, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info(*o) for o in outputs],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    return bytes(model.SerializeToString())


HEADED_INPUTS = [("x", "float64", ["a", "b"]), ("cat", "string", ["cat"])]


def _headed_batches() -> list[Batch]:
    """NaN and null numbers, unseen and null categories; 0, 1 and several blocks of rows."""
    import pyarrow as pa

    rng = np.random.default_rng(11)
    batches = []
    for rows in (0, 1, 2500):
        a = rng.normal(0, 5, rows)
        a[rng.random(rows) < 0.1] = np.nan
        b = rng.normal(-2, 1, rows)
        cats = rng.choice(np.array(["u", "v", "w", "unseen", ""], dtype=object), rows)
        batches.append(
            Batch.from_arrow(
                pa.table(
                    {
                        "a": pa.array(a),
                        "b": pa.array(b, mask=rng.random(rows) < 0.1),
                        "cat": pa.array(
                            list(cats), mask=rng.random(rows) < 0.1
                        ).dictionary_encode(),
                    }
                )
            )
        )
    return batches


@pytest.mark.parametrize("head", ["binary", "softmax"])
def test_the_head_runs_with_the_fused_kernel_bit_for_bit(head: str) -> None:
    model = _headed_graph(head)
    fused = Plan(model, HEADED_INPUTS)
    unfused = Plan(model, HEADED_INPUTS, fuse=False)
    assert len(fused.fused) == 1
    assert "run straight from the Arrow columns with the" in fused.fused[0], fused.fused
    for batch in _headed_batches():
        for threads in (1, 2):
            got, want = fused.run(batch, threads), unfused.run(batch, threads)
            assert list(got) == list(want)
            for name in want:
                np.testing.assert_array_equal(got[name], want[name], strict=True)
    # The tensor path (no Arrow columns) runs the head node by node: same answers.
    tensors = {
        "x": np.array([[1.0, np.nan], [0.0, -1e300]]),
        "cat": np.array([["v"], ["nope"]], dtype=object),
    }
    got, want = fused.run_tensors(tensors), unfused.run_tensors(tensors)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], strict=True)


def test_a_head_with_a_node_outside_it_keeps_the_node_by_node_head() -> None:
    """A Mul after the scores (no head instruction) leaves the head to the general executor."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(_headed_graph("softmax"))
    model.graph.node.append(helper.make_node("Mul", ["probabilities", "probabilities"], ["sq"]))
    model.graph.output.append(helper.make_tensor_value_info("sq", TensorProto.DOUBLE, [None, 3]))
    data = model.SerializeToString()
    fused = Plan(data, HEADED_INPUTS)
    assert len(fused.fused) == 1
    assert "run straight" not in fused.fused[0]
    unfused = Plan(data, HEADED_INPUTS, fuse=False)
    for batch in _headed_batches():
        got, want = fused.run(batch, 2), unfused.run(batch, 2)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], strict=True)


ISA_CHECK = """
import sys
import numpy as np
sys.path.insert(0, {tests!r})
from test_fusion import HEADED_INPUTS, _headed_batches, _headed_graph
from edgewise._core import Plan
for head in ("binary", "softmax"):
    model = _headed_graph(head)
    fused, unfused = Plan(model, HEADED_INPUTS), Plan(model, HEADED_INPUTS, fuse=False)
    for batch in _headed_batches():
        got, want = fused.run(batch, 2), unfused.run(batch, 2)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], strict=True)
print("ok")
"""


def run_script(script: str, env: dict[str, str], timeout: float) -> str:
    """`script` (formatted with `tests`, this directory) in a fresh interpreter with `env`
    added to the environment, for settings read once per process; its stdout, stripped."""
    tests = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, "-c", script.format(tests=tests)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_instruction_set_copy_of_the_fused_block_agrees(isa: str) -> None:
    """EDGEWISE_ISA picks the copy (never above what the CPU has), once per process."""
    assert run_script(ISA_CHECK, {"EDGEWISE_ISA": isa}, timeout=120) == "ok"
