"""The native engine against scikit-learn on random pipelines and random data (hypothesis).

Each example draws a model family and its size (one tree or many, shallow or deep, two to seven
classes, a regression), fits it behind imputation, scaling and one-hot encoding on a random
credit-like frame, compiles it, and scores fresh rows in batches of random size (including empty
and one-row batches) with NaN and null numeric values and categories the fit never saw. Every
score must be within 1e-6 of scikit-learn's (relative for regressions), with the same labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from edgewise import Model
from edgewise.compile import compile_pipeline
from edgewise.datasets import CATEGORICAL, NUMERIC, credit_frame

TOLERANCE = 1e-6


def _classifier(family: str, size: int, depth: int | None, seed: int) -> Any:
    if family == "logistic":
        return LogisticRegression(max_iter=300)
    if family == "decision_tree":
        return DecisionTreeClassifier(max_depth=depth, random_state=seed)
    if family == "random_forest":
        return RandomForestClassifier(n_estimators=size, max_depth=depth, random_state=seed)
    if family == "gradient_boosting":
        return GradientBoostingClassifier(n_estimators=size, max_depth=3, random_state=seed)
    return HistGradientBoostingClassifier(max_iter=size, early_stopping=False, random_state=seed)


def _regressor(family: str, size: int, depth: int | None, seed: int) -> Any:
    if family == "ridge":
        return Ridge()
    if family == "extra_trees":
        return ExtraTreesRegressor(n_estimators=size, max_depth=depth, random_state=seed)
    return HistGradientBoostingRegressor(max_iter=size, early_stopping=False, random_state=seed)


def _pipeline(estimator: Any, imputer_strategy: str) -> Pipeline:
    numeric = make_pipeline(SimpleImputer(strategy=imputer_strategy), StandardScaler())
    categorical = OneHotEncoder(handle_unknown="ignore")
    return Pipeline(
        [
            (
                "columns",
                ColumnTransformer([("num", numeric, NUMERIC), ("cat", categorical, CATEGORICAL)]),
            ),
            ("model", estimator),
        ]
    )


def _spoil(rows: pd.DataFrame, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """NaN in numeric columns and categories the fit never saw, on about `share` of rows."""
    rows = rows.copy()
    for column in NUMERIC:
        rows.loc[rng.random(len(rows)) < share, column] = np.nan
    for column in CATEGORICAL:
        rows.loc[rng.random(len(rows)) < share, column] = "never-seen"
    return rows


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    task = draw(st.sampled_from(["binary", "multiclass", "regression"]))
    if task == "regression":
        family = draw(st.sampled_from(["ridge", "extra_trees", "hist_gradient_boosting"]))
    else:
        family = draw(
            st.sampled_from(
                [
                    "logistic",
                    "decision_tree",
                    "random_forest",
                    "gradient_boosting",
                    "hist_gradient_boosting",
                ]
            )
        )
    return {
        "task": task,
        "family": family,
        "classes": draw(st.integers(3, 7)) if task == "multiclass" else 2,
        "size": draw(st.sampled_from([1, 2, 7])),
        "depth": draw(st.sampled_from([1, 4, None])),
        "imputer": draw(st.sampled_from(["mean", "median"])),
        "seed": draw(st.integers(0, 2**16)),
        "spoil": draw(st.sampled_from([0.0, 0.05, 0.5])),
        "batches": draw(st.lists(st.integers(0, 300), min_size=1, max_size=4)),
    }


# Each example fits and compiles a model: a tenth of the profile's examples (15 by default,
# 500 with HYPOTHESIS_PROFILE=thorough).
@settings(max_examples=max(15, settings().max_examples // 10))
@given(case=cases())
def test_native_engine_reproduces_scikit_learn(case: dict[str, Any]) -> None:
    rng = np.random.default_rng(case["seed"])
    train = credit_frame(600, seed=case["seed"])
    features = [*NUMERIC, *CATEGORICAL]
    if case["task"] == "regression":
        target = train["income"].fillna(0) * rng.uniform(0.5, 2) + train["balance"].fillna(0)
        estimator = _regressor(case["family"], case["size"], case["depth"], case["seed"])
    else:
        # Classes from a noisy score, so every class appears and trees have work to do.
        score = train["debt_ratio"].fillna(0) + rng.normal(0, 0.3, len(train))
        target = pd.qcut(score, case["classes"], labels=False)
        estimator = _classifier(case["family"], case["size"], case["depth"], case["seed"])
    pipeline = _pipeline(estimator, case["imputer"]).fit(train[features], target)
    result = compile_pipeline(
        pipeline, train.assign(target=target), name="random", version=1, sample_rows=300
    )
    model = Model.from_bundle(result.bundle, engine="native")

    fresh = _spoil(credit_frame(sum(case["batches"]), seed=case["seed"] + 1), rng, case["spoil"])
    start = 0
    for rows in case["batches"]:
        batch = fresh.iloc[start : start + rows][features]
        start += rows
        scores = pa.table(model.predict(batch))
        assert scores.num_rows == rows
        if rows == 0:
            continue
        if case["task"] == "regression":
            expected = pipeline.predict(batch)
            got = scores["prediction"].to_numpy()
            np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=TOLERANCE)
        else:
            expected = pipeline.predict_proba(batch)
            for i, label in enumerate(pipeline.classes_):
                got = scores[f"proba_{label}"].to_numpy()
                np.testing.assert_allclose(got, expected[:, i], rtol=0, atol=TOLERANCE)
            assert scores["label"].to_pylist() == list(pipeline.predict(batch))
