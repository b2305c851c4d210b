"""The final tree model as an exact float64 subgraph.

skl2onnx writes every tree model as an ai.onnx.ml v1 TreeEnsembleClassifier/Regressor with
float32 thresholds and weights, ignores HistGradientBoosting's categorical splits, and loses
the float32 cast scikit-learn applies to X before `sklearn.tree` models; its float64 threshold
search also loops forever on the +inf thresholds of splits that only route missing values.
So during the exact conversion the tree model becomes a placeholder node, which
`replace_tree_model` then expands into a subgraph built from the fitted estimator that follows
its predict arithmetic step by step: input cast or category remap, one opset-5 TreeEnsemble,
averaging or baseline, inverse link, and label rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper
from sklearn.base import is_classifier
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
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from .support import ExactGraphUnsupported
from .tree_ensemble import Tree, from_hgb_predictor, from_sklearn_tree, tree_ensemble_node

HIST = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
BOOSTED = (GradientBoostingClassifier, GradientBoostingRegressor, *HIST)
TREE_MODELS = (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    *BOOSTED,
)
PLACEHOLDER = "ExactTreeModel"
PLACEHOLDER_DOMAIN = "edgewise.exact"
#: TreeEnsemble (split and leaf tensors of the input type) first appears in ai.onnx.ml 5.
ML_OPSET = 5


def convert_tree_model(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter writing the placeholder: features in, the model's outputs out."""
    from skl2onnx.operator_converters.common import concatenate_variables

    container.add_node(
        PLACEHOLDER,
        [concatenate_variables(scope, operator.inputs, container)],
        [output.full_name for output in operator.outputs],
        op_domain=PLACEHOLDER_DOMAIN,
        op_version=1,
        name=scope.get_unique_operator_name(PLACEHOLDER),
    )


def replace_tree_model(model: ModelProto, estimator: Any) -> None:
    """Expand the placeholder for `estimator` into the exact subgraph writing the same
    outputs. A graph without one is left as is."""
    graph = model.graph
    found = [i for i, node in enumerate(graph.node) if node.domain == PLACEHOLDER_DOMAIN]
    if not found:
        return
    if len(found) > 1:
        raise ExactGraphUnsupported(f"the graph holds {len(found)} tree models, not one")
    position = found[0]
    placeholder = graph.node[position]
    sub = _Subgraph(_names_in(graph))
    _build(sub, estimator, placeholder.input[0], list(placeholder.output))

    nodes = list(graph.node)
    nodes[position : position + 1] = sub.nodes
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(sub.initializers)
    opsets = [o for o in model.opset_import if o.domain != PLACEHOLDER_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    ml = [opset for opset in model.opset_import if opset.domain == "ai.onnx.ml"]
    if ml:
        ml[0].version = max(ml[0].version, ML_OPSET)
    else:
        model.opset_import.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))


def _build(sub: _Subgraph, estimator: Any, x: str, outputs: list[str]) -> None:
    if isinstance(estimator, HIST):
        if estimator._preprocessor is not None:
            x = _remap_categories(sub, estimator, x)
    else:
        # sklearn.tree models round X to float32, then compare it with float64 thresholds.
        x = sub.op("Cast", [x], to=TensorProto.FLOAT)
        x = sub.op("Cast", [x], to=TensorProto.DOUBLE)
    trees, n_targets = _trees(estimator)
    raw = sub.add(tree_ensemble_node(trees, n_targets, x, sub.name("sum"), sub.name("trees")))
    if isinstance(estimator, BOOSTED):
        raw = sub.op("Add", [raw, sub.const("baseline", _baseline(estimator))])
    else:  # forests average their trees; a single tree divides by 1, exactly
        n_trees = len(getattr(estimator, "estimators_", [estimator]))
        raw = sub.op("Div", [raw, sub.const("n_trees", np.float64(n_trees))])

    if is_classifier(estimator):
        _classify(sub, estimator, raw, n_targets, outputs)
    elif isinstance(estimator, HIST) and type(estimator._loss.link).__name__ == "LogLink":
        sub.op("Exp", [raw], output=outputs[0])  # poisson and gamma losses
    else:
        sub.op("Identity", [raw], output=outputs[0])


def _trees(estimator: Any) -> tuple[list[Tree], int]:
    """Every tree with the output column (target) it adds to, and the number of columns."""
    if isinstance(estimator, HIST):
        known, rows = estimator._bin_mapper.make_known_categories_bitsets()
        trees = [
            from_hgb_predictor(predictor, known, rows, target)
            for iteration in estimator._predictors
            for target, predictor in enumerate(iteration)
        ]
        return trees, estimator.n_trees_per_iteration_
    if isinstance(estimator, BOOSTED):
        stages = estimator.estimators_
        trees = [
            from_sklearn_tree(stages[i, k].tree_, k, scale=estimator.learning_rate)
            for i in range(stages.shape[0])
            for k in range(stages.shape[1])
        ]
        return trees, stages.shape[1]
    # Classifier leaves hold class fractions: one tree per class, reading that class's column.
    n_targets = len(estimator.classes_) if is_classifier(estimator) else 1
    trees = [
        from_sklearn_tree(member.tree_, k, column=k)
        for member in getattr(estimator, "estimators_", [estimator])
        for k in range(n_targets)
    ]
    return trees, n_targets


def _baseline(estimator: Any) -> np.ndarray:
    """The raw prediction before any tree, shape (1, n_targets)."""
    if isinstance(estimator, HIST):
        return np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(1, -1)
    # The default (prior / mean / quantile) or "zero" init: the same constant for every row.
    row = np.zeros((1, estimator.n_features_in_), dtype=np.float32)
    return np.asarray(estimator._raw_predict_init(row), dtype=np.float64).reshape(1, -1)


def _remap_categories(sub: _Subgraph, estimator: Any, x: str) -> str:
    """HistGradientBoosting's own ColumnTransformer: categorical columns first, each replaced
    by its index among the categories seen in fit (NaN when missing or unseen); node feature
    indexes refer to this order."""
    categorical = np.asarray(estimator.is_categorical_, dtype=bool)
    encoder = estimator._preprocessor.named_transformers_["encoder"]
    parts = []
    for column, categories in zip(np.flatnonzero(categorical), encoder.categories_, strict=True):
        values = sub.op("Gather", [x, sub.const("column", np.array([column]))], axis=1)
        known = np.asarray(categories, dtype=np.float64)
        known = known[~np.isnan(known)]  # NaN sorts last, so the codes before it are unchanged
        parts.append(
            sub.op(
                "LabelEncoder",
                [values],
                domain="ai.onnx.ml",
                keys_tensor=numpy_helper.from_array(known, "keys"),
                values_tensor=numpy_helper.from_array(np.arange(known.size, dtype=np.float64)),
                default_tensor=numpy_helper.from_array(np.array([np.nan])),
            )
        )
    numeric = np.flatnonzero(~categorical)
    if numeric.size:
        parts.append(sub.op("Gather", [x, sub.const("columns", numeric)], axis=1))
    return sub.op("Concat", parts, axis=1)


def _classify(
    sub: _Subgraph,
    estimator: Any,
    raw: str,
    n_targets: int,
    outputs: list[str],
) -> None:
    label, probabilities = outputs
    classes = _class_labels(estimator.classes_)
    if not isinstance(estimator, BOOSTED):  # averaged class fractions are the probabilities
        sub.op("Identity", [raw], output=probabilities)
        choice = sub.op("ArgMax", [probabilities], axis=1, keepdims=0)
    elif n_targets > 1:  # multinomial: softmax, label = argmax of the raw scores
        sub.op("Softmax", [raw], output=probabilities, axis=1)
        choice = sub.op("ArgMax", [raw], axis=1, keepdims=0)
    else:
        # p1 = expit(raw), or expit(2 raw) for the exponential loss; p0 = 1 - p1.
        if type(estimator._loss.link).__name__ == "HalfLogitLink":
            raw_logit = sub.op("Mul", [raw, sub.const("two", np.float64(2.0))])
        else:
            raw_logit = raw
        p1 = sub.op("Sigmoid", [raw_logit])
        p0 = sub.op("Sub", [sub.const("one", np.ones((1, 1))), p1])
        sub.op("Concat", [p0, p1], output=probabilities, axis=1)
        # The label comes from the raw score, as in scikit-learn: HistGradientBoosting picks
        # class 1 when raw > 0, GradientBoosting when raw >= 0. ArgMax takes the first of a tie,
        # so [-raw, raw] gives "> 0", and [raw, -raw] with the classes reversed gives ">= 0".
        if isinstance(estimator, HIST):
            signs = np.array([[-1.0, 1.0]])
        else:
            signs, classes = np.array([[1.0, -1.0]]), classes[::-1]
        signed = sub.op("Mul", [raw, sub.const("signs", signs)])
        choice = sub.op("ArgMax", [signed], axis=1, keepdims=0)
    sub.op("Gather", [sub.const("classes", classes), choice], output=label)


def _class_labels(classes: Any) -> np.ndarray:
    """The classes as a tensor of the label type skl2onnx declares: int64 or string."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iu":
        return classes.astype(np.int64)
    return np.array([str(c) for c in classes], dtype=object)


def _names_in(graph: Any) -> set[str]:
    names = {node.name for node in graph.node}
    names.update(name for node in graph.node for name in (*node.input, *node.output))
    names.update(value.name for value in (*graph.input, *graph.output, *graph.initializer))
    return names


class _Subgraph:
    """Nodes and initializers under fresh names that cannot clash with skl2onnx's."""

    def __init__(self, taken: set[str]) -> None:
        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._taken = taken

    def name(self, base: str) -> str:
        name, suffix = f"exact_{base}", 0
        while name in self._taken:
            suffix += 1
            name = f"exact_{base}_{suffix}"
        self._taken.add(name)
        return name

    def const(self, base: str, value: Any) -> str:
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, node: NodeProto) -> str:
        self.nodes.append(node)
        return str(node.output[0])

    def op(
        self, op_type: str, inputs: list[str], *, output: str | None = None, **attributes: Any
    ) -> str:
        output = output or self.name(op_type.lower())
        return self.add(
            helper.make_node(op_type, inputs, [output], name=self.name(op_type), **attributes)
        )
