"""The executor against onnxruntime on scikit-learn linear pipelines converted by skl2onnx.

Oracle: onnxruntime on the same float32 graph, the one edgewise scores with today (ml Imputer,
Scaler, OneHotEncoder, LinearClassifier [+ Normalizer], LinearRegressor, with Concat, Gather and
Reshape around them). Both run in float32, so they agree within 1e-5 (relative for large
regression outputs); labels are compared where the top two probabilities are 1e-5 apart.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from edgewise._core import Plan

NUMERIC = ["income", "age", "balance"]
CATEGORICAL = ["region", "product"]
CATEGORIES = {"region": ["north", "south", "east"], "product": ["card", "loan"]}
TOL = 1e-5


def training_frame(seed: int, rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, rows),
            "age": rng.normal(40, 12, rows),
            "balance": rng.normal(0, 3, rows),
            **{c: rng.choice(CATEGORIES[c], rows) for c in CATEGORICAL},
        }
    )
    frame.loc[rng.random(rows) < 0.1, "income"] = np.nan
    return frame


def pipeline(kind: str, seed: int) -> tuple[Pipeline, dict]:
    """A fitted pipeline and skl2onnx's options for it."""
    frame = training_frame(seed)
    rng = np.random.default_rng(seed + 1)
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    categorical = OneHotEncoder(handle_unknown="ignore")
    columns = [("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)]
    latent = frame[NUMERIC].fillna(0).to_numpy() @ rng.normal(size=3) / 10
    latent += frame["region"].map({"north": 1.0, "south": -1.0, "east": 0.0}).to_numpy()
    options: dict = {LogisticRegression: {"zipmap": False}}
    if kind == "logistic-binary":
        model, y = LogisticRegression(), latent + rng.normal(size=len(frame)) > 0
    elif kind == "logistic-multiclass":
        model, y = LogisticRegression(), np.digitize(latent, np.quantile(latent, [0.3, 0.6]))
    elif kind == "logistic-numeric-only":
        columns = [("num", StandardScaler(), ["age", "balance"])]
        model, y = LogisticRegression(C=0.1), frame["age"] + rng.normal(size=len(frame)) > 40
    elif kind == "linear-regression":
        model, y = LinearRegression(), latent * 1000 + rng.normal(size=len(frame))
    else:
        assert kind == "linear-regression-two-targets"
        model = LinearRegression()
        y = np.column_stack([latent, -3 * latent + frame["age"].to_numpy()])
    fitted = make_pipeline(ColumnTransformer(columns), model).fit(frame, y)
    return fitted, options


KINDS = [
    "logistic-binary",
    "logistic-multiclass",
    "logistic-numeric-only",
    "linear-regression",
    "linear-regression-two-targets",
]


@functools.cache
def compiled(kind: str) -> tuple[bytes, list[str]]:
    fitted, options = pipeline(kind, seed=KINDS.index(kind))
    columns = [c for _, _, cols in fitted.steps[0][1].transformers for c in cols]
    types = [
        (c, StringTensorType([None, 1]) if c in CATEGORICAL else FloatTensorType([None, 1]))
        for c in columns
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skl2onnx's own deprecation warnings
        model = to_onnx(fitted, initial_types=types, options=options, target_opset=21)
    return model.SerializeToString(), columns


@functools.cache
def runners(kind: str) -> tuple[ort.InferenceSession, Plan, list[str]]:
    model, columns = compiled(kind)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # idle pool threads would spin on the test's cores
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return session, Plan(model), columns


def test_the_graphs_use_the_float32_ml_ops() -> None:
    """The agreement below is about these ops: check that skl2onnx still emits them."""
    ops = set()
    for kind in KINDS:
        ops |= {n.op_type for n in onnx.load_from_string(compiled(kind)[0]).graph.node}
    expected = {"Imputer", "Scaler", "OneHotEncoder", "LinearClassifier", "LinearRegressor"}
    assert expected <= ops


numbers = st.one_of(
    st.just(math.nan),
    st.floats(-100, 200, width=32),
    st.sampled_from([0.0, 40.0, 50.0]),
)


@st.composite
def rows(draw, columns: list[str]) -> dict[str, np.ndarray]:
    n = draw(st.one_of(st.just(0), st.just(1), st.integers(2, 16)))
    feeds = {}
    for c in columns:
        if c in CATEGORICAL:
            values = st.sampled_from([*CATEGORIES[c], "unseen", ""])
            feeds[c] = draw(hnp.arrays(object, (n, 1), elements=values))
        else:
            feeds[c] = draw(hnp.arrays(np.float32, (n, 1), elements=numbers))
    return feeds


def assert_agree(got: dict[str, np.ndarray], want: dict[str, np.ndarray], feeds: dict) -> None:
    assert sorted(got) == sorted(want)
    probabilities = want.get("probabilities")
    for name, expected in want.items():
        out = got[name]
        context = f"output {name!r}\ninputs: {feeds!r}\nonnxruntime: {expected!r}\ngot: {out!r}"
        assert out.dtype == expected.dtype, context
        assert out.shape == expected.shape, context
        if name == "label" and probabilities is not None:
            top2 = np.sort(probabilities, axis=1)[:, -2:]
            clear = top2[:, 1] - top2[:, 0] > TOL
            np.testing.assert_array_equal(out[clear], expected[clear], err_msg=context)
        else:
            np.testing.assert_allclose(out, expected, rtol=TOL, atol=TOL, err_msg=context)


@pytest.mark.parametrize("kind", KINDS)
@given(data=st.data())
def test_plan_agrees_with_onnxruntime(kind: str, data: st.DataObject) -> None:
    session, plan, columns = runners(kind)
    feeds = data.draw(rows(columns), label="feeds")
    want = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds), strict=True))
    assert_agree(plan.run_tensors(feeds), want, feeds)
