"""`edgewise.compile.compile_pipeline`: each supported transformer and estimator, end to end.

Every compile is checked the same way (`check_compiled`): the manifest (task, outputs, classes,
schema, engine, per-engine fidelity, lineage), the health sample, the exact float64 graph run on
onnxruntime, and a round trip through bytes into a `Model` whose predictions on a pyarrow table
are compared with scikit-learn's. The rows scored carry NaN in every numeric column the model
accepts missing, and unseen categories in every string column that accepts them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
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
from sklearn.neighbors import KNeighborsClassifier
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
from edgewise.cli import main
from edgewise.compile import CompileResult, compile_pipeline, skl2onnx_fixes
from edgewise.compile.convert import final_estimator, input_layout, to_onnx
from edgewise.compile.exact import ExactGraphUnsupported, to_exact_onnx
from edgewise.compile.infer import infer_schema
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
ENGINES = ("native", "onnxruntime")

#: The exact graph reproduces scikit-learn to ~1e-15 (summation order); probabilities must agree
#: within this, and regressions within this times max(1, |y|).
EXACT = 1e-9
#: Largest score difference accepted from the float32 graph (linear models, unit-scale targets).
FLOAT32_TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread():
    """The data is tiny: on a busy 2-core machine, OpenMP teams spin-waiting for each other make
    HistGradientBoosting fit and predict 50x slower than on one thread."""
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """The credit data plus an int column and targets: binary int and string, three string
    classes, and regression targets of unit scale and of |y| around 4e4 (positive)."""
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
    frame["spend"] = np.maximum(
        frame["income"].fillna(40_000) * (1.2 - frame["utilization"])
        + 40 * np.sqrt(frame["balance"])
        + rng.normal(0, 500, ROWS),
        100.0,
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


def scoring_rows(frame: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """`frame` with NaN in a seventh of the rows of each numeric column that accepts missing
    values, and an unseen category in a seventh of each string column that accepts one."""
    rows = frame[[c["name"] for c in manifest["schema"]]].copy()
    for i, column in enumerate(manifest["schema"]):
        holes = np.arange(len(rows)) % 7 == i % 7
        if column["kind"] != "string" and column["accepts_missing"]:
            rows[column["name"]] = rows[column["name"]].astype(np.float64).mask(holes)
        elif column["kind"] == "string" and column["accepts_unknown"]:
            rows[column["name"]] = rows[column["name"]].mask(holes, "atlantis")
    return rows


def onnxruntime_scores(bundle: Bundle, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the bundle's graph on onnxruntime itself: (scores (n, k), labels or None)."""
    session = ort.InferenceSession(bundle.model, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in bundle.manifest["inputs"]:
        values = rows[spec["columns"]]
        if spec["type"] == "string":
            feeds[spec["name"]] = values.astype(str).to_numpy(object)
        else:
            feeds[spec["name"]] = values.to_numpy(np.dtype(spec["type"]))
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(names, feeds), strict=True))
    if "probabilities" in results:
        return results["probabilities"], results["label"]
    return results["variable"].reshape(-1, 1), None


def model_scores(model: Model, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray | None]:
    """Score `rows` with `model` through `predict` on a pyarrow table."""
    predicted = pa.table(model.predict(pa.Table.from_pandas(rows, preserve_index=False)))
    assert predicted.column_names == model.output_columns
    assert predicted.num_rows == len(rows)
    scores = [predicted[c].to_numpy() for c in model.output_columns if c != "label"]
    labels = None
    if "label" in predicted.column_names:
        labels = predicted["label"].to_numpy(zero_copy_only=False)
    return np.column_stack(scores), labels


def assert_like_scikit_learn(
    pipeline: Any,
    rows: pd.DataFrame,
    scores: tuple[np.ndarray, np.ndarray | None],
    tolerance: float = EXACT,
    *,
    same_labels: bool = True,
) -> None:
    """Probabilities within `tolerance`, regressions within `tolerance` * max(1, |y|), and
    (unless told otherwise) the same label on every row."""
    actual, labels = scores
    if is_classifier(final_estimator(pipeline)):
        expected = pipeline.predict_proba(rows)
        assert labels is not None
        if same_labels:
            assert labels.tolist() == pipeline.predict(rows).tolist()
    else:
        expected = pipeline.predict(rows).reshape(-1, 1)
    bound = tolerance * np.maximum(1.0, np.abs(expected))
    worst = np.abs(actual - expected) / bound
    assert worst.max() <= 1.0, f"{worst.max() * tolerance:.3g} off (scaled), over {tolerance:g}"


def check_engines(result: CompileResult) -> None:
    """The manifest records the graph, each engine's fidelity or why it cannot run the graph,
    and the default: native whenever it can run the graph."""
    manifest = result.bundle.manifest
    engine, fidelity = manifest["engine"], manifest["fidelity"]
    assert set(fidelity) == set(ENGINES) == set(result.fidelity_by_engine)
    for name in ENGINES:
        measured = result.fidelity_by_engine[name]
        if measured is None:
            assert fidelity[name] is None
            assert engine["unavailable"][name]  # the reason, in words
        else:
            assert fidelity[name] == measured.to_json()
            assert measured.engine == name
            assert name not in engine["unavailable"]
    assert fidelity["onnxruntime"] is not None  # onnxruntime runs every graph we ship
    assert engine["name"] == ("native" if fidelity["native"] else "onnxruntime")
    assert result.fidelity == result.fidelity_by_engine[engine["name"]]
    if engine["name"] == "native":
        assert engine["reason"] == "the native engine runs this graph"
    else:
        native_problem = engine["unavailable"]["native"]
        assert engine["reason"] == f"the native engine cannot run this graph: {native_problem}"
    if engine["graph"] == "exact-float64":
        assert engine["graph_reason"] == "every step has an exact float64 form"
        assert {i["type"] for i in manifest["inputs"]} <= {"float64", "string"}
    else:
        assert engine["graph"] == "float32"
        assert engine["graph_reason"].startswith("the exact float64 graph cannot be used: ")
        assert {i["type"] for i in manifest["inputs"]} <= {"float32", "string"}


def check_compiled(
    result: CompileResult, pipeline: Any, frame: pd.DataFrame, features: list[str]
) -> pa.Table:
    """Check the manifest, the health sample, and the scores of the exact graph on onnxruntime
    and of a reloaded model; returns the reloaded model's predictions on `frame[features]`."""
    manifest = result.bundle.manifest
    classifier = is_classifier(final_estimator(pipeline))
    fidelity = result.fidelity
    print(f"{type(final_estimator(pipeline)).__name__}: {fidelity.describe()}")

    # Manifest: task, outputs, schema, engine, fidelity, lineage.
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
    check_engines(result)
    assert manifest["engine"]["graph"] == "exact-float64"
    assert manifest["lineage"]["estimator"] == type(final_estimator(pipeline)).__name__
    assert set(manifest["lineage"]["libraries"]) >= {"scikit-learn", "skl2onnx", "onnxruntime"}

    # Fidelity as measured at compile time, on every engine that runs the graph.
    scale = 1.0 if classifier else max(1.0, np.abs(pipeline.predict(frame[features])).max())
    for measured in result.fidelity_by_engine.values():
        if measured is not None:
            assert 0 < measured.rows <= len(frame)
            assert measured.max_abs_diff <= EXACT * scale
            assert measured.label_agreement == (1.0 if classifier else None)

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

    # The graph on onnxruntime, with missing values and unseen categories where accepted.
    rows = scoring_rows(frame, manifest)
    assert_like_scikit_learn(pipeline, rows, onnxruntime_scores(result.bundle, rows))

    # A reloaded model scores a pyarrow table like the pipeline does, on its default engine.
    model = Model.from_bundle(Bundle.from_bytes(result.bundle.to_bytes()))
    assert model.output_columns == columns
    assert_like_scikit_learn(pipeline, rows, model_scores(model, rows))
    return pa.table(model.predict(pa.Table.from_pandas(frame[features], preserve_index=False)))


def refuse_exact_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    """Compile to the float32 graph, as for a pipeline the exact graph does not cover."""

    def refuse(pipeline: Any, schema: Any) -> None:
        raise ExactGraphUnsupported("refused by the test")

    monkeypatch.setattr("edgewise.compile.choice.exact_graph", refuse)


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
    predicted = check_compiled(result, pipeline, frame, features)
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
    check_compiled(result, pipeline, frame, FEATURES)


@pytest.mark.parametrize(("target", "classes"), TARGETS)
@pytest.mark.parametrize("make", TREE_CLASSIFIERS)
def test_tree_classifier(frame, make, target, classes):
    pipeline = fit(make_pipeline(preprocess_for_trees(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    assert result.bundle.manifest["outputs"]["classes"] == classes
    predicted = check_compiled(result, pipeline, frame, FEATURES)
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


REGRESSION_TARGETS = [
    pytest.param("limit", id="unit-scale"),
    pytest.param("spend", id="4e4-scale"),
]


@pytest.mark.parametrize("target", REGRESSION_TARGETS)
@pytest.mark.parametrize("make", LINEAR_REGRESSORS)
def test_linear_regressor(frame, make, target):
    pipeline = fit(make_pipeline(preprocess_scaled(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    check_compiled(result, pipeline, frame, FEATURES)


@pytest.mark.parametrize("target", REGRESSION_TARGETS)
@pytest.mark.parametrize("make", TREE_REGRESSORS)
def test_tree_regressor(frame, make, target):
    pipeline = fit(make_pipeline(preprocess_for_trees(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    check_compiled(result, pipeline, frame, FEATURES)


# --- what else the exact graph reproduces -----------------------------------------------------


def preprocess_mixed() -> ColumnTransformer:
    """Mean-impute and min-max half the numeric columns, median-impute and robust-scale the
    other half, and ordinal-encode the categorical ones (unseen categories become -1)."""
    half = len(ALL_NUMERIC) // 2
    return ColumnTransformer(
        [
            (
                "minmax",
                make_pipeline(SimpleImputer(strategy="mean"), MinMaxScaler()),
                ALL_NUMERIC[:half],
            ),
            (
                "robust",
                make_pipeline(SimpleImputer(strategy="median"), RobustScaler()),
                ALL_NUMERIC[half:],
            ),
            (
                "ordinal",
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                CATEGORICAL,
            ),
        ]
    )


#: HistGradientBoosting's own category handling, on the ordinal codes of the last five columns.
CATEGORICAL_CODES = list(range(len(ALL_NUMERIC), len(FEATURES)))

MORE_EXACT = [
    pytest.param(
        lambda: HistGradientBoostingClassifier(
            max_iter=15, categorical_features=CATEGORICAL_CODES, random_state=0
        ),
        "defaulted",
        id="HistGradientBoosting-categorical-binary",
    ),
    pytest.param(
        lambda: HistGradientBoostingClassifier(
            max_iter=15, categorical_features=CATEGORICAL_CODES, random_state=0
        ),
        "risk",
        id="HistGradientBoosting-categorical-multiclass",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(
            max_iter=15, categorical_features=CATEGORICAL_CODES, random_state=0
        ),
        "spend",
        id="HistGradientBoosting-categorical-regressor",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=15, loss="poisson", random_state=0),
        "spend",
        id="HistGradientBoosting-poisson",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=15, loss="gamma", random_state=0),
        "spend",
        id="HistGradientBoosting-gamma",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(
            max_iter=15, loss="quantile", quantile=0.8, random_state=0
        ),
        "limit",
        id="HistGradientBoosting-quantile",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=5, min_samples_leaf=ROWS, random_state=0),
        "limit",
        id="HistGradientBoosting-single-leaf-trees",
    ),
    pytest.param(
        lambda: GradientBoostingClassifier(n_estimators=15, loss="exponential", random_state=0),
        "answer",
        id="GradientBoosting-exponential",
    ),
    pytest.param(
        lambda: GradientBoostingClassifier(n_estimators=15, init="zero", random_state=0),
        "risk",
        id="GradientBoosting-zero-init",
    ),
    pytest.param(
        lambda: GradientBoostingRegressor(n_estimators=15, loss="huber", random_state=0),
        "spend",
        id="GradientBoosting-huber",
    ),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=10, max_depth=8, random_state=0),
        "risk",
        id="RandomForest",
    ),
    pytest.param(lambda: LogisticRegression(max_iter=1000), "defaulted", id="LogisticRegression"),
]


@pytest.mark.parametrize(("make", "target"), MORE_EXACT)
def test_exact_graph_behind_mixed_preprocessing(frame, make, target):
    """Losses, inits and links beyond the defaults, HistGradientBoosting's categorical splits
    (unseen categories go where missing values go), and the other scalers and imputers."""
    pipeline = fit(make_pipeline(preprocess_mixed(), make()), frame, FEATURES, target)
    result = compile_(pipeline, frame)
    check_compiled(result, pipeline, frame, FEATURES)


def test_a_tree_that_is_a_single_leaf(frame):
    """A constant target grows a tree without branches; the graph still predicts it."""
    data = frame.assign(constant=2.5)
    tree = fit(DecisionTreeRegressor(), data, COMPLETE, "constant")
    assert tree.tree_.node_count == 1
    check_compiled(compile_(tree, data), tree, data, COMPLETE)


def test_float32_training_columns_are_verified_as_float64(frame):
    """Bundles take float64 columns; scikit-learn keeps float32 columns in float32 through
    imputers and scalers (~1e-8 away), so the expected scores come from float64 copies."""
    data = frame.astype(dict.fromkeys(NUMERIC, np.float32))
    pipeline = fit(
        make_pipeline(
            SimpleImputer(strategy="mean"), StandardScaler(), LogisticRegression(max_iter=1000)
        ),
        data,
        NUMERIC,
        "risk",
    )
    result = compile_(pipeline, data)
    assert result.fidelity.max_abs_diff <= EXACT
    health = read_health(result.bundle)
    assert health.dtypes["income"] == np.float32  # the rows as the user holds them
    float64_rows = health[NUMERIC].astype(np.float64)
    expected = health[[f"expected_proba_{c}" for c in RISK]].to_numpy()
    np.testing.assert_array_equal(expected, pipeline.predict_proba(float64_rows))
    assert np.abs(expected - pipeline.predict_proba(health[NUMERIC])).max() > EXACT


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
    """No imputer: the trees route NaN themselves, and the graph sends missing values the same
    way scikit-learn does."""
    estimator = fit(make(), frame, ALL_NUMERIC, target)
    result = compile_(estimator, frame)
    assert all(c["accepts_missing"] for c in result.bundle.manifest["schema"])
    check_compiled(result, estimator, frame, ALL_NUMERIC)

    model = Model.from_bundle(result.bundle)
    for column in ALL_NUMERIC:
        rows = frame[ALL_NUMERIC].head(100).copy()
        rows[column] = np.nan
        assert_like_scikit_learn(estimator, rows, model_scores(model, rows))


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
    """Guards the fix: if skl2onnx stops emitting bools, this fails and the fix can go. Only the
    float32 graph runs skl2onnx's tree converters; the exact graph builds its own trees."""
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import random_forest

    refuse_exact_graph(monkeypatch)
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


@pytest.mark.parametrize("graph", ["exact-float64", "float32"])
@pytest.mark.parametrize(
    "with_missing", [True, False], ids=["nan-in-training", "no-nan-in-training"]
)
@pytest.mark.parametrize(("make", "target"), NATIVE_MISSING_TREES)
def test_tree_missing_values_go_where_scikit_learn_sends_them(
    frame, monkeypatch, make, target, with_missing, graph
):
    """scikit-learn trees take NaN without an imputer, so the probe marks the columns as
    accepting missing values; the graph must send NaN down the same branch as scikit-learn
    (learned from NaNs in training, or else towards the child that saw more samples).
    In the float32 graph, NaN always took the right branch without the fix in `skl2onnx_fixes`."""
    if graph == "float32":
        refuse_exact_graph(monkeypatch)
    data = frame if with_missing else frame.fillna(dict.fromkeys(ALL_NUMERIC, 0.0))
    estimator = fit(make(), data, ALL_NUMERIC, target)
    result = compile_(estimator, data)
    assert result.bundle.manifest["engine"]["graph"] == graph
    assert all(c["accepts_missing"] for c in result.bundle.manifest["schema"])
    tolerance = EXACT if graph == "exact-float64" else 1e-5
    scale = 1.0 if is_classifier(estimator) else max(1.0, np.abs(data[target]).max())
    assert result.fidelity.max_abs_diff < tolerance * scale
    model = Model.from_bundle(result.bundle)
    for column in ALL_NUMERIC:
        rows = data[ALL_NUMERIC].head(100).copy()
        rows[column] = np.nan
        assert_like_scikit_learn(
            estimator, rows, model_scores(model, rows), tolerance, same_labels=graph != "float32"
        )


# --- refusals and errors -----------------------------------------------------------------------


def linear_on_complete_columns(frame: pd.DataFrame) -> Any:
    return fit(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        frame,
        COMPLETE,
        "defaulted",
    )


def test_max_diff_refuses_a_model_that_differs_by_more(frame, monkeypatch):
    pipeline = linear_on_complete_columns(frame)
    exact = compile_(pipeline, frame, max_diff=EXACT).fidelity
    assert exact.max_abs_diff <= EXACT

    refuse_exact_graph(monkeypatch)
    measured = compile_(pipeline, frame).fidelity
    assert 0 < measured.max_abs_diff < FLOAT32_TOLERANCE  # float32 arithmetic: small, not zero

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
    assert result.fidelity.max_abs_diff <= EXACT


# --- the float32 graph, when the exact one cannot be used --------------------------------------

FLOAT32_FALLBACKS = [
    pytest.param(
        lambda: make_pipeline(StandardScaler(), KNeighborsClassifier()),
        COMPLETE,
        "risk",
        "step 'kneighborsclassifier' (KNeighborsClassifier): it has no exact float64 form",
        id="estimator-not-in-the-list",
    ),
    pytest.param(
        lambda: make_pipeline(
            SimpleImputer(missing_values=-1.0, strategy="median"),
            StandardScaler(),
            LogisticRegression(max_iter=1000),
        ),
        COMPLETE,
        "defaulted",
        "step 'simpleimputer' (SimpleImputer): missing_values=-1.0; only NaN is reproduced",
        id="imputer-sentinel",
    ),
    pytest.param(
        lambda: make_pipeline(
            ColumnTransformer(
                [
                    ("counts", OneHotEncoder(handle_unknown="ignore"), ["products"]),
                    ("numeric", StandardScaler(), COMPLETE),
                ]
            ),
            LogisticRegression(max_iter=1000),
        ),
        [*COMPLETE, "products"],
        "risk",
        "step 'columntransformer/counts' (OneHotEncoder): numeric categories",
        id="numeric-categories",
    ),
]


@pytest.mark.parametrize(("make", "features", "target", "reason"), FLOAT32_FALLBACKS)
def test_float32_graph_when_a_step_has_no_exact_form(frame, make, features, target, reason):
    pipeline = fit(make(), frame, features, target)
    result = compile_(pipeline, frame)
    manifest = result.bundle.manifest
    check_engines(result)
    assert manifest["engine"]["graph"] == "float32"
    assert manifest["engine"]["graph_reason"].startswith(
        f"the exact float64 graph cannot be used: {reason}"
    )
    assert {i["type"] for i in manifest["inputs"]} == {"float32"}
    assert result.fidelity.max_abs_diff < FLOAT32_TOLERANCE
    rows = frame[features].head(200)
    model = Model.from_bundle(result.bundle)
    assert_like_scikit_learn(pipeline, rows, model_scores(model, rows), FLOAT32_TOLERANCE)


def test_float32_graph_when_no_engine_can_run_the_exact_one(frame, monkeypatch):
    monkeypatch.setattr(
        "edgewise.compile.choice.to_exact_onnx", lambda pipeline, layout: b"not a graph"
    )
    pipeline = linear_on_complete_columns(frame)
    result = compile_(pipeline, frame)
    engine = result.bundle.manifest["engine"]
    check_engines(result)
    assert engine["graph"] == "float32"
    assert engine["graph_reason"].startswith(
        "the exact float64 graph cannot be used: no engine can run it (native: "
    )
    assert "; onnxruntime: onnxruntime cannot load the model" in engine["graph_reason"]


EXACT_REFUSALS = [
    pytest.param(
        lambda: GradientBoostingRegressor(n_estimators=3, init=LinearRegression()),
        ["limit"],
        "(GradientBoostingRegressor): an init estimator; only the default init or 'zero' adds "
        "a constant",
        id="GradientBoosting-init-estimator",
    ),
    pytest.param(
        lambda: make_pipeline(SimpleImputer(add_indicator=True), LinearRegression()),
        ["limit"],
        "step 'simpleimputer' (SimpleImputer): add_indicator=True is not reproduced",
        id="imputer-indicator",
    ),
    pytest.param(
        lambda: make_pipeline(SimpleImputer(), RandomForestRegressor(n_estimators=2)),
        ["limit", "spend"],
        "step 'randomforestregressor' (RandomForestRegressor): several outputs",
        id="multi-output-forest",
    ),
]


@pytest.mark.parametrize(("make", "targets", "reason"), EXACT_REFUSALS)
def test_exact_graph_names_the_step_it_cannot_reproduce(frame, make, targets, reason):
    features = ["income", *COMPLETE]
    data = frame.fillna({"income": 40_000.0}) if "simpleimputer" not in reason else frame
    pipeline = make().fit(data[features], data[targets].squeeze(axis=1))
    layout = input_layout(pipeline, infer_schema(data, features), "float64")
    with pytest.raises(ExactGraphUnsupported) as caught:
        to_exact_onnx(pipeline, layout)
    assert str(caught.value).startswith(reason)
    assert isinstance(caught.value, ModelError)


def test_exact_imputer_stays_out_of_the_float32_graph(frame):
    """The float64 SimpleImputer converter is registered only while the exact graph is built:
    skl2onnx's own converter (ai.onnx.ml Imputer) writes the float32 graph before and after."""
    from skl2onnx.common._registration import get_converter

    pipeline = fit(
        make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=1000)),
        frame,
        ALL_NUMERIC,
        "defaulted",
    )
    schema = infer_schema(frame, ALL_NUMERIC)

    def operators(graph: bytes) -> list[str]:
        return [node.op_type for node in onnx.load_model_from_string(graph).graph.node]

    original = get_converter("SklearnSimpleImputer")
    float32_before = to_onnx(pipeline, input_layout(pipeline, schema, "float32"))
    exact = to_exact_onnx(pipeline, input_layout(pipeline, schema, "float64"))
    float32_after = to_onnx(pipeline, input_layout(pipeline, schema, "float32"))
    assert get_converter("SklearnSimpleImputer") is original
    assert {"IsNaN", "Where"} <= set(operators(exact)) and "Imputer" not in operators(exact)
    assert "Imputer" in operators(float32_before)
    assert operators(float32_after) == operators(float32_before)


def test_cli_prints_the_graph_and_each_engine(frame, tmp_path):
    import joblib
    from click.testing import CliRunner

    pipeline = linear_on_complete_columns(frame)
    joblib.dump(pipeline, tmp_path / "model.joblib")
    frame.to_parquet(tmp_path / "train.parquet", index=False)
    bundle = tmp_path / "model.ewb"
    arguments = ["compile", str(tmp_path / "model.joblib"), "--train-data"]
    arguments += [str(tmp_path / "train.parquet"), "--name", "m", "--version", "1"]
    result = CliRunner().invoke(main, [*arguments, "-o", str(bundle)])
    assert result.exit_code == 0, result.output
    engine = Bundle.read(bundle).manifest["engine"]
    lines = result.output.splitlines()
    assert lines[2] == "  graph:    exact-float64 (every step has an exact float64 form)"
    assert lines[3] == f"  engine:   {engine['name']} ({engine['reason']})"
    assert lines[4].startswith(f"  fidelity: {engine['name']}: max |diff| ")
    other = "onnxruntime" if engine["name"] == "native" else "native"
    assert lines[5].startswith(f"            {other}: ")


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
    assert result.fidelity.max_abs_diff <= EXACT

    model = Model.from_bundle(Bundle.from_bytes(result.bundle.to_bytes()))
    features = [*onehot, *ordinal, *COMPLETE]
    rows = frame[features].head(20).copy()
    rows.loc[rows.index[:5], "region"] = "atlantis"  # one-hot: all zeros, like scikit-learn
    predicted = pa.table(model.predict(pa.Table.from_pandas(rows, preserve_index=False)))
    actual = np.column_stack([predicted[f"proba_{c}"].to_numpy() for c in RISK])
    np.testing.assert_allclose(actual, pipeline.predict_proba(rows), rtol=0, atol=EXACT)
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
