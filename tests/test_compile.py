"""`edgewise.compile.compile_pipeline`: each supported transformer and estimator, end to end.

Every compile is checked the same way (`check_compiled`): the manifest (task, outputs, classes,
schema, fidelity, lineage), the health sample, and a round trip through bytes into a `Model`
whose predictions on a pyarrow table are compared with scikit-learn's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.base import is_classifier
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score, roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_limits

from edgewise import Bundle, DataError, Model, ModelError, SchemaError
from edgewise.compile import CompileResult, compile_pipeline, skl2onnx_fixes
from edgewise.compile.convert import final_estimator
from edgewise.datasets import CATEGORICAL, NUMERIC, credit_frame

ROWS = 800
#: Numeric columns the generator never leaves empty, plus an int64 column.
COMPLETE = ["age", "balance", "utilization", "tenure_months", "debt_ratio", "late_payments"]
ALL_NUMERIC = [*NUMERIC, "products"]
FEATURES = [*ALL_NUMERIC, *CATEGORICAL]
KINDS = {
    **dict.fromkeys(NUMERIC, "float"),
    "products": "int",
    **dict.fromkeys(CATEGORICAL, "string"),
}
RISK = ["high", "low", "medium"]  # the string classes, as scikit-learn sorts them

#: Largest score difference accepted for linear models (float32 arithmetic in onnxruntime).
LINEAR_TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """The data is tiny: on a busy 2-core machine, OpenMP teams spin-waiting for each other make
    HistGradientBoosting fit and predict 50x slower than on one thread."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The credit data plus an int column and targets: binary int and string, three string
    classes, and a regression target of unit scale."""
    frame = credit_frame(ROWS, seed=11)
    rng = np.random.default_rng(12)
    frame["products"] = rng.integers(1, 6, ROWS).astype(np.int64)
    score = (
        3 * frame["utilization"]
        + frame["debt_ratio"]
        + 0.5 * frame["late_payments"]
        - (frame["credit_score"].fillna(660) - 660) / 120
        + 0.15 * frame["products"]
        + rng.normal(0, 0.3, ROWS)
    )
    bands = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    frame["risk"] = np.array(["low", "medium", "high"])[bands]
    frame["answer"] = np.where(frame["defaulted"] == 1, "yes", "no")
    frame["limit"] = (
        1.5
        + 0.4 * np.log(frame["income"].fillna(40_000) / 40_000)
        - 0.8 * frame["utilization"]
        + 0.05 * frame["products"]
        + 0.3 * (frame["employment"] == "employed")
        + rng.normal(0, 0.1, ROWS)
    )
    return frame


def preprocess_scaled() -> ColumnTransformer:
    """Impute and scale the numeric columns, one-hot encode the categorical ones."""
    return ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                ALL_NUMERIC,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def preprocess_for_trees() -> ColumnTransformer:
    """Trees need no scaling: impute the numeric columns, one-hot encode the categorical ones."""
    return ColumnTransformer(
        [
            ("numeric", SimpleImputer(strategy="median"), ALL_NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )


def fit(pipeline: Any, frame: pd.DataFrame, features: list[str], target: str) -> Any:
    return pipeline.fit(frame[features], frame[target])


def compile_(pipeline: Any, frame: pd.DataFrame, **kw: Any) -> CompileResult:
    return compile_pipeline(pipeline, frame, name="test-model", version=7, **kw)


def classes_of(pipeline: Any) -> list[Any]:
    return [c.item() if hasattr(c, "item") else c for c in final_estimator(pipeline).classes_]


def read_health(bundle: Bundle) -> pd.DataFrame:
    return pq.read_table(pa.BufferReader(bundle.health)).to_pandas()


def check_compiled(
    result: CompileResult,
    pipeline: Any,
    frame: pd.DataFrame,
    features: list[str],
    *,
    linear: bool,
    min_label_agreement: float = 0.99,
) -> pa.Table:
    """Check the manifest, the health sample and the scores of a reloaded model; returns the
    reloaded model's predictions on `frame[features]`."""
    manifest = result.bundle.manifest
    classifier = is_classifier(final_estimator(pipeline))
    fidelity = result.fidelity
    print(f"{type(final_estimator(pipeline)).__name__}: {fidelity.describe()}")

    # Manifest: task, outputs, schema, fidelity, lineage.
    assert manifest["name"] == "test-model" and manifest["version"] == 7
    if classifier:
        classes = classes_of(pipeline)
        assert manifest["task"] == "classification"
        assert manifest["outputs"]["classes"] == classes
        assert manifest["outputs"]["label_output"] == "label"
        assert manifest["outputs"]["probability_output"] == "probabilities"
        columns = ["label", *(f"proba_{c}" for c in classes)]
    else:
        assert manifest["task"] == "regression"
        assert manifest["outputs"] == {"task": "regression", "prediction_output": "variable"}
        columns = ["prediction"]
    assert [c["name"] for c in manifest["schema"]] == features
    assert [c["kind"] for c in manifest["schema"]] == [KINDS[f] for f in features]
    assert manifest["fidelity"] == {"onnxruntime": fidelity.to_json()}
    assert manifest["engine"]["name"] == "onnxruntime"
    assert manifest["lineage"]["estimator"] == type(final_estimator(pipeline)).__name__
    assert set(manifest["lineage"]["libraries"]) >= {"scikit-learn", "skl2onnx", "onnxruntime"}

    # Fidelity as measured at compile time.
    assert 0 < fidelity.rows <= len(frame)
    assert fidelity.engine == "onnxruntime"
    if classifier:
        assert fidelity.label_agreement is not None
        assert fidelity.label_agreement >= (1.0 if linear else min_label_agreement)
    else:
        assert fidelity.label_agreement is None
    if linear:
        assert fidelity.max_abs_diff < LINEAR_TOLERANCE
        assert fidelity.share_over_1e_3 == 0.0

    # The health sample: the input columns, then the pipeline's own scores.
    health = read_health(result.bundle)
    score_columns = [c for c in columns if c != "label"]
    assert list(health.columns) == [*features, *(f"expected_{c}" for c in score_columns)]
    assert len(health) == min(256, fidelity.rows)
    expected = (
        pipeline.predict_proba(health[features])
        if classifier
        else pipeline.predict(health[features]).reshape(-1, 1)
    )
    np.testing.assert_allclose(health[[f"expected_{c}" for c in score_columns]], expected)

    # A reloaded model scores a pyarrow table like the pipeline does.
    model = Model.from_bundle(Bundle.from_bytes(result.bundle.to_bytes()))
    assert model.output_columns == columns
    predicted = pa.table(model.predict(pa.Table.from_pandas(frame[features], preserve_index=False)))
    assert predicted.column_names == columns
    assert predicted.num_rows == len(frame)
    if classifier:
        actual = np.column_stack([predicted[c].to_numpy() for c in score_columns])
        expected = pipeline.predict_proba(frame[features])
        agreement = np.mean(
            predicted["label"].to_numpy(zero_copy_only=False) == pipeline.predict(frame[features])
        )
        assert agreement >= (1.0 if linear else min_label_agreement)
    else:
        actual = predicted["prediction"].to_numpy().reshape(-1, 1)
        expected = pipeline.predict(frame[features]).reshape(-1, 1)
    if linear:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=LINEAR_TOLERANCE)
    return predicted


# --- transformers ------------------------------------------------------------------------------

TRANSFORMERS = [
    pytest.param(
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        [*COMPLETE, "products"],
        id="StandardScaler",
    ),
    pytest.param(
        lambda: make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)),
        [*COMPLETE, "products"],
        id="MinMaxScaler",
    ),
    pytest.param(
        lambda: make_pipeline(RobustScaler(), LogisticRegression(max_iter=1000)),
        [*COMPLETE, "products"],
        id="RobustScaler",
    ),
    pytest.param(
        lambda: make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
        ALL_NUMERIC,
        id="SimpleImputer",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
                    ("numeric", StandardScaler(), COMPLETE),
                ]
            ),
            LogisticRegression(max_iter=1000),
        ),
        [*COMPLETE, *CATEGORICAL],
        id="OneHotEncoder-ignore",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("categorical", OrdinalEncoder(), CATEGORICAL),
                    ("numeric", StandardScaler(), COMPLETE),
                ]
            ),
            LogisticRegression(max_iter=1000),
        ),
        [*COMPLETE, *CATEGORICAL],
        id="OrdinalEncoder",
    ),
    pytest.param(
        lambda: make_pipeline(preprocess_scaled(), LogisticRegression(max_iter=1000)),
        FEATURES,
        id="ColumnTransformer",
    ),
    pytest.param(
        lambda: Pipeline(
            [
                ("impute", SimpleImputer(strategy="mean")),
                ("scale", Pipeline([("robust", RobustScaler()), ("minmax", MinMaxScaler())])),
                ("model", LogisticRegression(max_iter=1000)),
            ]
        ),
        ALL_NUMERIC,
        id="Pipeline-nested",
    ),
]


@pytest.mark.parametrize(("make", "features"), TRANSFORMERS)
def test_transformer_before_logistic_regression(frame, make, features):
    """Each transformer, ahead of a multiclass LogisticRegression with string classes."""
    pipeline = fit(make(), frame, features, "risk")
    result = compile_(pipeline, frame)
    assert result.bundle.manifest["outputs"]["classes"] == RISK
    predicted = check_compiled(result, pipeline, frame, features, linear=True)
    assert predicted["label"].to_pylist() == pipeline.predict(frame[features]).tolist()


# --- estimators --------------------------------------------------------------------------------

LINEAR_CLASSIFIERS = [
    pytest.param(lambda: LogisticRegression(max_iter=1000), id="LogisticRegression")
]
TREE_CLASSIFIERS = [
    pytest.param(lambda: DecisionTreeClassifier(max_depth=6, random_state=0), id="DecisionTree"),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0),
        id="RandomForest",
    ),
    pytest.param(
        lambda: ExtraTreesClassifier(n_estimators=10, max_depth=8, random_state=0),
        id="ExtraTrees",
    ),
    pytest.param(
        lambda: GradientBoostingClassifier(n_estimators=15, max_depth=3, random_state=0),
        id="GradientBoosting",
    ),
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0),
        id="HistGradientBoosting",
    ),
]
TARGETS = [
    pytest.param("defaulted", [0, 1], id="binary-int"),
    pytest.param("answer", ["no", "yes"], id="binary-str"),
    pytest.param("risk", RISK, id="multiclass-str"),
]


@pytest.mark.parametrize(("target", "classes"), TARGETS)
@pytest.mark.parametrize("make", LINEAR_CLASSIFIERS)
def test_linear_classifier(frame, make, target, classes):
    pipeline = fit(make_pipeline(preprocess_scaled(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    assert result.bundle.manifest["outputs"]["classes"] == classes
    check_compiled(result, pipeline, frame, FEATURES, linear=True)


@pytest.mark.parametrize(("target", "classes"), TARGETS)
@pytest.mark.parametrize("make", TREE_CLASSIFIERS)
def test_tree_classifier(frame, make, target, classes):
    pipeline = fit(make_pipeline(preprocess_for_trees(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    assert result.bundle.manifest["outputs"]["classes"] == classes
    predicted = check_compiled(result, pipeline, frame, FEATURES, linear=False)
    # Probabilities are float32 in onnxruntime; most rows agree far closer than 1e-3.
    assert result.fidelity.share_over_1e_3 <= 0.01
    assert predicted["label"].type == (pa.int64() if target == "defaulted" else pa.string())


LINEAR_REGRESSORS = [
    pytest.param(LinearRegression, id="LinearRegression"),
    pytest.param(lambda: Ridge(alpha=1.0), id="Ridge"),
]
TREE_REGRESSORS = [
    pytest.param(lambda: DecisionTreeRegressor(max_depth=6, random_state=0), id="DecisionTree"),
    pytest.param(
        lambda: RandomForestRegressor(n_estimators=10, max_depth=8, random_state=0),
        id="RandomForest",
    ),
    pytest.param(
        lambda: ExtraTreesRegressor(n_estimators=10, max_depth=8, random_state=0),
        id="ExtraTrees",
    ),
    pytest.param(
        lambda: GradientBoostingRegressor(n_estimators=15, max_depth=3, random_state=0),
        id="GradientBoosting",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0),
        id="HistGradientBoosting",
    ),
]


@pytest.mark.parametrize("make", LINEAR_REGRESSORS)
def test_linear_regressor(frame, make):
    pipeline = fit(make_pipeline(preprocess_scaled(), make()), frame, FEATURES, "limit")
    result = compile_(pipeline, frame)
    check_compiled(result, pipeline, frame, FEATURES, linear=True)


@pytest.mark.parametrize("make", TREE_REGRESSORS)
def test_tree_regressor(frame, make):
    pipeline = fit(make_pipeline(preprocess_for_trees(), make()), frame, FEATURES, "limit")
    result = compile_(pipeline, frame)
    predicted = check_compiled(result, pipeline, frame, FEATURES, linear=False)
    # The target is of unit scale: float32 leaves and sums stay well within 1e-3.
    assert result.fidelity.share_over_1e_3 <= 0.01
    close = np.isclose(
        predicted["prediction"].to_numpy(), pipeline.predict(frame[FEATURES]), atol=1e-3
    )
    assert close.mean() >= 0.99


# --- HistGradientBoosting and the skl2onnx fix -------------------------------------------------

HIST_GRADIENT_BOOSTING = [
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=15, random_state=0), "risk", id="classifier"
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=15, random_state=0), "limit", id="regressor"
    ),
]


@pytest.mark.parametrize(("make", "target"), HIST_GRADIENT_BOOSTING)
def test_hist_gradient_boosting_handles_missing_values_itself(frame, make, target):
    """No imputer: the trees route NaN themselves. The conversion needs the skl2onnx fix, and the
    graph then sends missing values the same way scikit-learn does."""
    estimator = fit(make(), frame, ALL_NUMERIC, target)
    result = compile_(estimator, frame)
    assert all(c["accepts_missing"] for c in result.bundle.manifest["schema"])
    check_compiled(result, estimator, frame, ALL_NUMERIC, linear=False, min_label_agreement=1.0)
    assert result.fidelity.max_abs_diff < 1e-5  # float32 rounding only

    model = Model.from_bundle(result.bundle)
    for column in ALL_NUMERIC:
        rows = frame[ALL_NUMERIC].head(100).copy()
        rows[column] = np.nan
        predicted = pa.table(model.predict(pa.Table.from_pandas(rows, preserve_index=False)))
        if target == "risk":
            actual = np.column_stack([predicted[f"proba_{c}"].to_numpy() for c in RISK])
            np.testing.assert_allclose(actual, estimator.predict_proba(rows), atol=1e-5)
        else:
            np.testing.assert_allclose(predicted["prediction"], estimator.predict(rows), atol=1e-5)


def test_hist_gradient_boosting_fix_turns_bool_flags_into_ints(frame):
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import random_forest

    estimator = fit(HistGradientBoostingClassifier(max_iter=3), frame, ALL_NUMERIC, "defaulted")
    tree = estimator._predictors[0][0]
    leaves = tree.nodes["is_leaf"].astype(bool)
    arguments = (True, tree, 0, 1.0, 0, False, False)

    unfixed = tree_ensemble.get_default_tree_classifier_attribute_pairs()
    tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting(unfixed, *arguments)
    flags = unfixed["nodes_missing_value_tracks_true"]
    assert {type(f) for f, leaf in zip(flags, leaves, strict=True) if leaf} == {bool}

    skl2onnx_fixes.apply()
    skl2onnx_fixes.apply()  # idempotent: the function is wrapped once
    wrapped = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting
    assert wrapped.__wrapped__ is tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting
    fixed = tree_ensemble.get_default_tree_classifier_attribute_pairs()
    wrapped(fixed, *arguments)
    fixed_flags = fixed["nodes_missing_value_tracks_true"]
    assert all(type(f) is int for f in fixed_flags)
    assert fixed_flags == [
        0 if leaf else int(go_left)
        for leaf, go_left in zip(leaves, tree.nodes["missing_go_to_left"], strict=True)
    ]
    assert any(fixed_flags)  # some missing values go left: the flags carry information
    assert fixed["nodes_modes"] == unfixed["nodes_modes"]  # nothing else changes


def test_hist_gradient_boosting_does_not_convert_without_the_fix(frame, monkeypatch):
    """Guards the fix: if skl2onnx stops emitting bools, this fails and the fix can go."""
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import random_forest

    skl2onnx_fixes.apply()
    monkeypatch.setattr(
        random_forest,
        "add_tree_to_attribute_pairs_hist_gradient_boosting",
        tree_ensemble.add_tree_to_attribute_pairs_hist_gradient_boosting,
    )
    estimator = fit(HistGradientBoostingClassifier(max_iter=3), frame, ALL_NUMERIC, "defaulted")
    with pytest.raises(ModelError, match="skl2onnx cannot convert this pipeline") as caught:
        compile_(estimator, frame)
    cause = caught.value.__cause__
    assert "Expected an int, got a boolean" in str(cause.__cause__ or cause.__context__)


# --- trees and missing values ------------------------------------------------------------------

NATIVE_MISSING_TREES = [
    pytest.param(
        lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
        "defaulted",
        id="DecisionTreeClassifier",
    ),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0),
        "risk",
        id="RandomForestClassifier",
    ),
    pytest.param(
        lambda: ExtraTreesClassifier(n_estimators=10, max_depth=8, random_state=0),
        "defaulted",
        id="ExtraTreesClassifier",
    ),
    pytest.param(
        lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
        "limit",
        id="DecisionTreeRegressor",
    ),
    pytest.param(
        lambda: RandomForestRegressor(n_estimators=10, max_depth=8, random_state=0),
        "limit",
        id="RandomForestRegressor",
    ),
]


@pytest.mark.parametrize(
    "with_missing", [True, False], ids=["nan-in-training", "no-nan-in-training"]
)
@pytest.mark.parametrize(("make", "target"), NATIVE_MISSING_TREES)
def test_tree_missing_values_go_where_scikit_learn_sends_them(frame, make, target, with_missing):
    """scikit-learn trees take NaN without an imputer, so the probe marks the columns as
    accepting missing values; the graph must send NaN down the same branch as scikit-learn
    (learned from NaNs in training, or else towards the child that saw more samples).
    Without the fix in `skl2onnx_fixes`, NaN always took the right branch."""
    data = frame if with_missing else frame.fillna(dict.fromkeys(ALL_NUMERIC, 0.0))
    estimator = fit(make(), data, ALL_NUMERIC, target)
    result = compile_(estimator, data)
    assert all(c["accepts_missing"] for c in result.bundle.manifest["schema"])
    assert result.fidelity.max_abs_diff < 1e-5
    model = Model.from_bundle(result.bundle)
    for column in ALL_NUMERIC:
        rows = data[ALL_NUMERIC].head(100).copy()
        rows[column] = np.nan
        predicted = pa.table(model.predict(pa.Table.from_pandas(rows, preserve_index=False)))
        if is_classifier(estimator):
            actual = np.column_stack([predicted[f"proba_{c}"] for c in classes_of(estimator)])
            expected = estimator.predict_proba(rows)
        else:
            actual, expected = predicted["prediction"].to_numpy(), estimator.predict(rows)
        np.testing.assert_allclose(actual, expected, atol=1e-5, err_msg=f"{column} is NaN")


# --- refusals and errors -----------------------------------------------------------------------


def linear_on_complete_columns(frame: pd.DataFrame) -> Any:
    return fit(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        frame,
        COMPLETE,
        "defaulted",
    )


def test_max_diff_refuses_a_model_that_differs_by_more(frame):
    pipeline = linear_on_complete_columns(frame)
    measured = compile_(pipeline, frame).fidelity
    assert 0 < measured.max_abs_diff < LINEAR_TOLERANCE  # float32 arithmetic: small, not zero

    with pytest.raises(ModelError) as caught:
        compile_(pipeline, frame, max_diff=1e-12)
    message = str(caught.value)
    assert f"differs from the pipeline by up to {measured.max_abs_diff:.3g}" in message
    assert "over --max-diff 1e-12" in message
    assert "bundle not written" in message
    assert measured.describe() in message

    accepted = compile_(pipeline, frame, max_diff=1e-4)
    assert accepted.fidelity == measured


def test_pipeline_fitted_on_a_numpy_array_is_refused(frame):
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(frame[COMPLETE].to_numpy(), frame["defaulted"].to_numpy())
    with pytest.raises(ModelError, match="fit it on a pandas DataFrame"):
        compile_(pipeline, frame)


def test_training_data_lacking_a_feature_is_refused(frame):
    pipeline = linear_on_complete_columns(frame)
    with pytest.raises(SchemaError, match="column 'debt_ratio': missing"):
        compile_(pipeline, frame.drop(columns=["debt_ratio"]))


def test_string_columns_need_a_column_transformer(frame):
    """Strings become per-column inputs only under a ColumnTransformer that selects by name."""
    encoded = fit(
        make_pipeline(OrdinalEncoder(), DecisionTreeClassifier(max_depth=3)),
        frame,
        ["region", "product"],
        "defaulted",
    )
    with pytest.raises(ModelError, match=r"string columns \['region', 'product'\] reach"):
        compile_(encoded, frame)

    by_position = fit(
        make_pipeline(
            ColumnTransformer([("categorical", OneHotEncoder(), [0, 1])]),
            LogisticRegression(max_iter=1000),
        ),
        frame,
        ["region", "product"],
        "defaulted",
    )
    with pytest.raises(ModelError, match="selects columns by position"):
        compile_(by_position, frame)

    # A ColumnTransformer may drop string columns: they are read but not used.
    dropped = fit(
        make_pipeline(
            ColumnTransformer([("numeric", StandardScaler(), COMPLETE)], remainder="drop"),
            LogisticRegression(max_iter=1000),
        ),
        frame,
        FEATURES,
        "defaulted",
    )
    result = compile_(dropped, frame)
    assert [c["name"] for c in result.bundle.manifest["schema"]] == FEATURES
    assert result.fidelity.max_abs_diff < LINEAR_TOLERANCE


# --- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["defaulted", "answer"], ids=["binary-int", "binary-str"])
def test_target_records_binary_metrics(frame, target):
    pipeline = fit(
        make_pipeline(preprocess_scaled(), LogisticRegression(max_iter=1000)),
        frame,
        FEATURES,
        target,
    )
    metrics = compile_(pipeline, frame, target=target).bundle.manifest["lineage"]["metrics"]
    truth = frame[target].to_numpy()
    probabilities = pipeline.predict_proba(frame[FEATURES])
    assert metrics["rows"] == len(frame)
    assert metrics["accuracy"] == pytest.approx(
        accuracy_score(truth, pipeline.predict(frame[FEATURES]))
    )
    positive = classes_of(pipeline)[1]
    assert metrics["roc_auc"] == pytest.approx(
        roc_auc_score(truth == positive, probabilities[:, 1])
    )
    assert 0.5 < metrics["roc_auc"] <= 1.0
    assert metrics["log_loss"] > 0


def test_target_records_multiclass_metrics(frame):
    pipeline = fit(
        make_pipeline(preprocess_scaled(), LogisticRegression(max_iter=1000)),
        frame,
        FEATURES,
        "risk",
    )
    metrics = compile_(pipeline, frame, target="risk").bundle.manifest["lineage"]["metrics"]
    assert metrics["accuracy"] == pytest.approx(pipeline.score(frame[FEATURES], frame["risk"]))
    assert metrics["log_loss"] > 0
    assert "roc_auc" not in metrics


def test_target_records_regression_metrics(frame):
    pipeline = fit(make_pipeline(preprocess_scaled(), Ridge()), frame, FEATURES, "limit")
    metrics = compile_(pipeline, frame, target="limit").bundle.manifest["lineage"]["metrics"]
    predicted = pipeline.predict(frame[FEATURES])
    assert metrics["rows"] == len(frame)
    assert metrics["r2"] == pytest.approx(r2_score(frame["limit"], predicted))
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(frame["limit"], predicted)))
    assert metrics["mae"] > 0
    assert metrics["r2"] > 0.5


def test_no_target_records_no_metrics_and_a_missing_target_is_refused(frame):
    pipeline = linear_on_complete_columns(frame)
    assert compile_(pipeline, frame).bundle.manifest["lineage"]["metrics"] is None
    with pytest.raises(SchemaError, match="column 'outcome': missing"):
        compile_(pipeline, frame, target="outcome")


# --- probing -----------------------------------------------------------------------------------


def test_imputer_makes_numeric_columns_accept_missing_values(frame):
    pipeline = fit(
        make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
        frame,
        ALL_NUMERIC,
        "defaulted",
    )
    schema = Model.from_bundle(compile_(pipeline, frame).bundle).schema
    assert {c.name: c.accepts_missing for c in schema.columns} == dict.fromkeys(ALL_NUMERIC, True)
    # Nullability records the training data: only some columns held nulls.
    assert {c.name for c in schema.columns if c.nullable} == {
        "income",
        "credit_score",
        "days_since_last_payment",
    }


def test_bare_logistic_regression_accepts_no_missing_values(frame):
    pipeline = fit(
        LogisticRegression(max_iter=2000),
        frame,
        ["utilization", "debt_ratio", "late_payments"],
        "defaulted",
    )
    model = Model.from_bundle(compile_(pipeline, frame).bundle)
    assert [c.accepts_missing for c in model.schema.columns] == [False, False, False]
    rows = frame[["utilization", "debt_ratio", "late_payments"]].head(10).copy()
    rows.loc[rows.index[4], "debt_ratio"] = np.nan
    with pytest.raises(DataError, match=r"input row 4: column 'debt_ratio'"):
        model.predict(pa.Table.from_pandas(rows, preserve_index=False))


def test_encoders_decide_which_columns_accept_unknown_categories(frame):
    onehot, ordinal = ["region", "product"], ["channel", "employment", "device"]
    pipeline = fit(
        make_pipeline(
            ColumnTransformer(
                [
                    ("onehot", OneHotEncoder(handle_unknown="ignore"), onehot),
                    ("ordinal", OrdinalEncoder(handle_unknown="error"), ordinal),
                    ("numeric", StandardScaler(), COMPLETE),
                ]
            ),
            LogisticRegression(max_iter=1000),
        ),
        frame,
        [*onehot, *ordinal, *COMPLETE],
        "risk",
    )
    result = compile_(pipeline, frame)
    schema = {c["name"]: c for c in result.bundle.manifest["schema"]}
    for name in onehot:
        assert schema[name]["accepts_unknown"] is True
    for name in ordinal:
        assert schema[name]["accepts_unknown"] is False
    for name in [*onehot, *ordinal]:
        assert schema[name]["kind"] == "string"
        assert schema[name]["categories"] == sorted(frame[name].unique())
        assert schema[name]["accepts_missing"] is False
    assert result.fidelity.max_abs_diff < LINEAR_TOLERANCE

    model = Model.from_bundle(Bundle.from_bytes(result.bundle.to_bytes()))
    features = [*onehot, *ordinal, *COMPLETE]
    rows = frame[features].head(20).copy()
    rows.loc[rows.index[:5], "region"] = "atlantis"  # one-hot: all zeros, like scikit-learn
    predicted = pa.table(model.predict(pa.Table.from_pandas(rows, preserve_index=False)))
    actual = np.column_stack([predicted[f"proba_{c}"].to_numpy() for c in RISK])
    np.testing.assert_allclose(actual, pipeline.predict_proba(rows), atol=LINEAR_TOLERANCE)
    assert predicted["label"].to_pylist() == pipeline.predict(rows).tolist()

    rows.loc[rows.index[7], "channel"] = "carrier pigeon"
    with pytest.raises(DataError, match="input row 7: column 'channel'"):
        model.predict(pa.Table.from_pandas(rows, preserve_index=False))


# --- the health sample -------------------------------------------------------------------------


def test_health_sample_holds_inputs_and_expected_scores(frame):
    pipeline = fit(
        make_pipeline(
            preprocess_for_trees(), RandomForestRegressor(n_estimators=5, random_state=0)
        ),
        frame,
        FEATURES,
        "limit",
    )
    bundle = Bundle.from_bytes(compile_(pipeline, frame, health_rows=50).bundle.to_bytes())
    health = pq.read_table(pa.BufferReader(bundle.health))
    assert health.column_names == [*FEATURES, "expected_prediction"]
    assert health.num_rows == 50
    assert health.schema.field("products").type == pa.int64()
    assert health.schema.field("region").type in (pa.string(), pa.large_string())
    assert health.schema.field("expected_prediction").type == pa.float64()
    inputs = health.select(FEATURES).to_pandas()
    np.testing.assert_allclose(health["expected_prediction"], pipeline.predict(inputs))
    # The rows are training rows (a sample of them), found again by their unique balance.
    assert frame["balance"].is_unique
    source = frame.set_index("balance", drop=False).loc[inputs["balance"], FEATURES]
    pd.testing.assert_frame_equal(inputs, source.reset_index(drop=True), check_dtype=False)
    # What the health sample is for: after install, the model reproduces the expected scores.
    scored = pa.table(Model.from_bundle(bundle).predict(health.select(FEATURES)))
    np.testing.assert_allclose(scored["prediction"], health["expected_prediction"], atol=1e-5)


def test_health_sample_of_a_classifier_has_one_column_per_class(frame):
    pipeline = fit(
        make_pipeline(preprocess_scaled(), LogisticRegression(max_iter=1000)),
        frame,
        FEATURES,
        "risk",
    )
    bundle = compile_(pipeline, frame).bundle
    health = read_health(bundle)
    assert list(health.columns) == [
        *FEATURES,
        "expected_proba_high",
        "expected_proba_low",
        "expected_proba_medium",
    ]
    assert len(health) == 256
    np.testing.assert_allclose(health.filter(like="expected_").sum(axis=1), 1.0)
    np.testing.assert_allclose(
        health.filter(like="expected_"), pipeline.predict_proba(health[FEATURES])
    )
