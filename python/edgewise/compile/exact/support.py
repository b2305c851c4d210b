"""Which pipeline steps the exact float64 graph reproduces, and why the others are refused.

Each supported step was measured against scikit-learn (docs/design/native-engine.md); anything
else falls back to the float32 graph, so the list errs on the side of refusing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
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
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ...exceptions import ModelError

#: scikit-learn's inverse links that the graph writes as operators (by class name: the classes
#: live in the private `sklearn._loss.link`).
LINKS = frozenset({"IdentityLink", "LogLink", "LogitLink", "HalfLogitLink", "MultinomialLogit"})


class ExactGraphUnsupported(ModelError):
    """A pipeline step has no exact float64 graph; the message names the step and the reason."""


def check_supported(pipeline: Any) -> None:
    """Raise `ExactGraphUnsupported` for the first step the exact graph cannot reproduce."""
    for path, step in _steps(pipeline, ""):
        check = _CHECKS.get(type(step))
        reason = "it has no exact float64 form in edgewise" if check is None else check(step)
        if reason is not None:
            where = f"step '{path}' " if path else ""
            raise ExactGraphUnsupported(f"{where}({type(step).__name__}): {reason}")


def _steps(estimator: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The leaf estimators of nested Pipelines and ColumnTransformers, with their paths."""
    children: list[tuple[str, Any]] = []
    if isinstance(estimator, Pipeline):
        children = list(estimator.steps)
    elif isinstance(estimator, ColumnTransformer):
        children = [(name, step) for name, step, _ in estimator.transformers_]
    else:
        yield path, estimator
        return
    for name, step in children:
        if step is not None and not isinstance(step, str):  # "drop", "passthrough"
            yield from _steps(step, f"{path}/{name}" if path else name)


def _exact(step: Any) -> str | None:
    return None


def _imputer(step: SimpleImputer) -> str | None:
    statistics = np.asarray(step.statistics_)
    if statistics.dtype.kind not in "fiu":
        return None  # strings: skl2onnx's converter does no arithmetic
    missing = step.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        return f"missing_values={missing!r}; only NaN is reproduced"
    if step.add_indicator:
        return "add_indicator=True is not reproduced"
    if np.isnan(statistics.astype(np.float64)).any():
        return "a column had no values in fit, and scikit-learn drops such columns"
    return None


def _encoder(step: OneHotEncoder | OrdinalEncoder) -> str | None:
    if any(np.asarray(c).dtype.kind not in "OU" for c in step.categories_):
        return "numeric categories, which skl2onnx compares as float32 or int64"
    return None


def _classes(step: Any) -> str | None:
    if is_classifier(step) and np.asarray(step.classes_).dtype.kind not in "iuOU":
        return "class labels that are neither integers nor strings"
    return None


def _link(step: Any) -> str | None:
    link = type(step._loss.link).__name__
    if link not in LINKS:
        return f"loss={step.loss!r}, whose inverse link {link} is not reproduced"
    return None


def _tree(step: Any) -> str | None:
    if step.n_outputs_ != 1:
        return "several outputs are not reproduced"
    return _classes(step)


def _gradient_boosting(step: Any) -> str | None:
    if step.init is not None and not (isinstance(step.init, str) and step.init == "zero"):
        return "an init estimator; only the default init or 'zero' adds a constant"
    return _classes(step) or _link(step)


def _hist_gradient_boosting(step: Any) -> str | None:
    encoder = None if step._preprocessor is None else step._preprocessor.named_transformers_
    if encoder is not None and any(
        np.asarray(c).dtype.kind != "f" for c in encoder["encoder"].categories_
    ):
        return "categorical features that are not numeric"
    return _classes(step) or _link(step)


_CHECKS: dict[type, Callable[[Any], str | None]] = {
    StandardScaler: _exact,
    MinMaxScaler: _exact,
    RobustScaler: _exact,
    SimpleImputer: _imputer,
    OneHotEncoder: _encoder,
    OrdinalEncoder: _encoder,
    LogisticRegression: _classes,
    LinearRegression: _exact,
    Ridge: _exact,
    DecisionTreeClassifier: _tree,
    DecisionTreeRegressor: _tree,
    RandomForestClassifier: _tree,
    RandomForestRegressor: _tree,
    ExtraTreesClassifier: _tree,
    ExtraTreesRegressor: _tree,
    GradientBoostingClassifier: _gradient_boosting,
    GradientBoostingRegressor: _gradient_boosting,
    HistGradientBoostingClassifier: _hist_gradient_boosting,
    HistGradientBoostingRegressor: _hist_gradient_boosting,
}
