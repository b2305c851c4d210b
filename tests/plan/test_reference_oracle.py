"""The executor against onnx's reference implementation, on small graphs of every op.

Oracle: `onnx.reference.ReferenceEvaluator` (pure numpy, onnx 1.23) run on the same model, on
hypothesis-generated inputs that include NaN, values equal to split thresholds, zero rows and one
row. Tree ensembles are drawn at random from a seed (all comparison modes, missing-value
tracking, several targets or classes, post_transforms, aggregate functions, base values, deep
trees, many classes). Float32 graphs agree within rtol 1e-5 / atol 1e-6, float64 graphs 1e-12.

Where the reference lacks something the ONNX spec defines, a subclass passed through
`ReferenceEvaluator(new_ops=...)` adds it with the reference's own code: the `*_as_tensor`
attributes of TreeEnsembleClassifier/Regressor v3 (read as float64 arrays) and the
post_transform of TreeEnsembleRegressor and TreeEnsemble (opset 5), which it rejects or ignores.

Where the reference is wrong, expectations are by hand (and checked with onnxruntime where it
runs the graph): LabelEncoder v1 (absent from the reference), opset-5 membership sets containing
0.0 (the reference ends the set there) and opset-5 one-leaf trees (it reads the wrong weight).

Where the spec is silent (or worded otherwise) and the reference and onnxruntime disagree,
onnxruntime is the oracle, because edgewise runs a graph in onnxruntime when the plan refuses it
and a model's scores must not depend on the engine: LOGISTIC/SOFTMAX/SOFTMAX_ZERO on a single
target (onnxruntime applies none, against the spec's wording), NaN at a BRANCH_NEQ node without
missing-value tracking, two-class classifiers with one or two score columns, classes no leaf
scores, a binary LinearClassifier under NONE/SOFTMAX/SOFTMAX_ZERO and Normalizer MAX on negative
values. Graphs onnxruntime answers by accident (NaN scores, labels outside classlabels) must be
refused. Binarizer on NaN is not pinned (onnxruntime raises).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.aionnxml import _common_classifier as post
from onnx.reference.ops.aionnxml.op_tree_ensemble import TreeEnsemble as _RefTreeEnsemble
from onnx.reference.ops.aionnxml.op_tree_ensemble_classifier import (
    TreeEnsembleClassifier as _RefTreeEnsembleClassifier,
)
from onnx.reference.ops.aionnxml.op_tree_ensemble_regressor import (
    TreeEnsembleRegressor as _RefTreeEnsembleRegressor,
)

from edgewise._core import Plan
from edgewise.exceptions import UnsupportedModelError

ML = "ai.onnx.ml"
OPSET = 21
FLOAT, DOUBLE, INT64, BOOL, STRING = (
    TensorProto.FLOAT,
    TensorProto.DOUBLE,
    TensorProto.INT64,
    TensorProto.BOOL,
    TensorProto.STRING,
)
F32_TOL = (1e-5, 1e-6)
F64_TOL = (1e-12, 1e-12)
# PROBIT is an erf_inv approximation (Winitzki's, in the reference and onnxruntime) whose
# (1 - x)(1 + x) and sqrt(v * v - v2) - v cancel near p = 0.5: float32 evaluation orders differ
# by up to ~1e-3 there.
PROBIT_TOL = (1e-3, 1e-3)

# ---------------------------------------------------------------------------------------------
# The reference, completed where it lacks what the spec defines


def _apply_post_transform(scores: np.ndarray, post_transform: str) -> np.ndarray:
    """post_transform as the reference's classifiers apply it (same functions, same dtype)."""
    scores = np.array(scores, dtype=np.float32)
    if post_transform in ("NONE", None):
        return scores
    return {
        "LOGISTIC": post.logistic,
        "SOFTMAX": post.softmax,
        "SOFTMAX_ZERO": post.softmax_zero,
        "PROBIT": post.probit,
    }[post_transform](scores).astype(np.float32)


def _tensor_attributes(kwargs: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """`*_as_tensor` attributes moved to their plain names, kept as float64 arrays."""
    for name in names:
        tensor = kwargs.pop(f"{name}_as_tensor", None)
        if tensor is not None:
            kwargs[name] = np.asarray(tensor, dtype=np.float64)
    return kwargs


class TreeEnsembleClassifier(_RefTreeEnsembleClassifier):
    """The reference op, reading `*_as_tensor` attributes (ai.onnx.ml v3) too."""

    op_domain = ML

    def _run(self, X, **kwargs):
        names = ("base_values", "class_weights", "nodes_values", "nodes_hitrates")
        return super()._run(X, **_tensor_attributes(kwargs, names))


class TreeEnsembleRegressor(_RefTreeEnsembleRegressor):
    """The reference op, reading `*_as_tensor` attributes and applying post_transform."""

    op_domain = ML

    def _run(self, X, post_transform=None, **kwargs):
        names = ("base_values", "target_weights", "nodes_values", "nodes_hitrates")
        (scores,) = super()._run(X, post_transform="NONE", **_tensor_attributes(kwargs, names))
        return (_apply_post_transform(scores, post_transform),)


class TreeEnsemble(_RefTreeEnsemble):
    """The reference op (ai.onnx.ml opset 5), applying post_transform, which it ignores."""

    op_domain = ML
    POST = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")

    def _run(self, X, *args, post_transform=0, **kwargs):
        (scores,) = super()._run(X, *args, **kwargs)
        if post_transform == 0:
            return (scores,)
        return (_apply_post_transform(scores, self.POST[post_transform]).astype(X.dtype),)


REFERENCE_OPS = [TreeEnsembleClassifier, TreeEnsembleRegressor, TreeEnsemble]

# ---------------------------------------------------------------------------------------------
# Building and checking models


def make_model(
    nodes: list[onnx.NodeProto],
    inputs: list[tuple[str, int, list[int | str | None]]],
    outputs: list[tuple[str, int, list[int | str | None] | None]],
    *,
    initializers: Sequence[onnx.TensorProto] = (),
    ml_opset: int = 1,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(ML, ml_opset)],
    )
    onnx.checker.check_model(model)
    return model


def init(name: str, values: Any, dtype: Any = None) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


NUMPY_OF = {FLOAT: np.float32, DOUBLE: np.float64, INT64: np.int64, BOOL: np.bool_}


def declared_output(model: onnx.ModelProto, name: str) -> tuple[np.dtype, list[int]]:
    """An output's dtype and trailing dims, as the graph declares them."""
    (info,) = (o for o in model.graph.output if o.name == name)
    tensor = info.type.tensor_type
    dtype = np.dtype(object) if tensor.elem_type == STRING else np.dtype(NUMPY_OF[tensor.elem_type])
    return dtype, [d.dim_value for d in tensor.shape.dim[1:]]


def reference_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference's outputs; numpy's warnings on NaN/overflow are part of the inputs' domain.

    For zero rows, the expectation is an empty array of the declared shape: several reference
    ops fail on empty inputs (np.vectorize, np.apply_along_axis, OneHotEncoder's checks).
    """
    if all(len(v) == 0 for v in feeds.values()):
        outputs = {}
        for o in model.graph.output:
            dtype, dims = declared_output(model, o.name)
            outputs[o.name] = np.empty((0, *dims), dtype)
        return outputs
    ref = _reference_evaluator(model.SerializeToString())
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        outputs = ref.run(None, feeds)
    return dict(zip(ref.output_names, outputs, strict=True))


@functools.lru_cache(maxsize=64)
def _reference_evaluator(model: bytes) -> ReferenceEvaluator:
    return ReferenceEvaluator(model, new_ops=REFERENCE_OPS)


@functools.lru_cache(maxsize=64)
def plan_of(model: bytes) -> Plan:
    return Plan(model)


def assert_outputs(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    expected: dict[str, np.ndarray],
    tol: tuple[float, float],
) -> None:
    """Plan.run_tensors gives `expected`: graph-declared dtypes, same shapes, values within tol."""
    got = plan_of(model.SerializeToString()).run_tensors(feeds)
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        want = np.asarray(want)
        out = got[name]
        try:
            assert out.dtype == declared_output(model, name)[0]
            assert out.shape == want.shape
            if out.dtype == object:
                assert out.tolist() == want.astype(object).tolist()
            elif out.dtype.kind in "biu":
                np.testing.assert_array_equal(out, want)
            else:
                np.testing.assert_allclose(out, want, rtol=tol[0], atol=tol[1])
        except AssertionError as e:
            raise AssertionError(
                f"output {name!r}\ninputs: {feeds!r}\nexpected: {want!r}\ngot: {out!r}"
            ) from e


def check_against_reference(
    model: onnx.ModelProto,
    feeds: dict[str, np.ndarray],
    tol: tuple[float, float],
    reference_feeds: Callable[[dict], dict] | None = None,
) -> None:
    expected = reference_run(model, reference_feeds(feeds) if reference_feeds else feeds)
    assert_outputs(model, feeds, expected, tol)


# ---------------------------------------------------------------------------------------------
# Input strategies

row_counts = st.one_of(st.just(0), st.just(1), st.integers(2, 16))


def f32_values(low: float = -1e3, high: float = 1e3) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=32)


def f64_values(low: float = -1e3, high: float = 1e3) -> st.SearchStrategy[float]:
    return st.floats(low, high)


def with_nan(values: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    return st.one_of(st.just(math.nan), values)


def dyadic(dtype: Any, bound: int = 512, denominator: int = 64) -> st.SearchStrategy[float]:
    """Multiples of 1/64 up to 8: sums and products of a few of them are exact in float32, so
    the result does not depend on the order of summation the spec leaves free."""
    return st.integers(-bound, bound).map(lambda k: dtype(k / denominator))


@st.composite
def batch(draw, columns: dict[str, tuple[Any, tuple[int, ...], st.SearchStrategy]]) -> dict:
    """Arrays sharing one drawn number of rows: {name: (dtype, trailing shape, elements)}."""
    rows = draw(row_counts)
    return {
        name: draw(hnp.arrays(dtype, (rows, *shape), elements=elements))
        for name, (dtype, shape, elements) in columns.items()
    }


# ---------------------------------------------------------------------------------------------
# Tree ensembles: random forests drawn from a seed, written as v1, v3 or opset-5 attributes

MODES = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ")
MODE_CODES = {m: i for i, m in enumerate(MODES)} | {"BRANCH_MEMBER": 6}
POST_TRANSFORMS = ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT")
AGGREGATES = ("SUM", "AVERAGE", "MIN", "MAX")


@dataclass
class Leaf:
    weights: dict[int, float]


@dataclass
class Split:
    feature: int
    mode: str
    threshold: float
    missing_true: bool
    true: Split | Leaf
    false: Split | Leaf
    members: tuple[float, ...] = ()


@dataclass(frozen=True)
class ForestSpec:
    """What a random forest is drawn from; its repr is what a failing example shows."""

    seed: int
    n_trees: int
    max_depth: int
    n_features: int
    n_targets: int
    double_thresholds: bool = False
    sparse_weights: bool = False  # tree i scores target i mod n_targets only
    one_target_per_leaf: bool = False
    class_subsets: bool = False  # each leaf scores a random subset of the targets
    untracked_neq: bool = False  # BRANCH_NEQ nodes may have missing-value tracking off
    members: bool = False
    positive_weights: bool = False
    one_leaf_trees: bool = True


@dataclass
class Forest:
    trees: list[Split | Leaf]
    pools: list[list[float]] = field(default_factory=list)


def draw_forest(spec: ForestSpec) -> Forest:
    """Random trees over all six comparison modes with random missing-value tracking.

    Thresholds come from a small pool per feature that the inputs also draw from, so EQ/NEQ and
    ties with LEQ/LT/GTE/GT are exercised. Unless `untracked_neq`, BRANCH_NEQ nodes track
    missing values: with tracking off, the spec sends NaN to the false branch (as the reference
    does) and onnxruntime to the true one (NaN != t).
    """
    rng = np.random.default_rng(spec.seed)
    pools = []
    for _ in range(spec.n_features):
        pool = rng.normal(0, 4, size=4).astype(np.float32).astype(np.float64)
        if spec.double_thresholds:
            pool[:2] = rng.normal(0, 4, size=2)
        pools.append(sorted(pool.tolist()))

    def leaf(tree: int) -> Leaf:
        if spec.one_target_per_leaf:
            targets = [int(rng.integers(spec.n_targets))]
        elif spec.sparse_weights:
            targets = [tree % spec.n_targets]
        elif spec.class_subsets:
            k = int(rng.integers(1, spec.n_targets + 1))
            targets = sorted(rng.choice(spec.n_targets, size=k, replace=False).tolist())
        else:
            targets = list(range(spec.n_targets))
        if spec.positive_weights:  # sums stay in (0, 1), where PROBIT is defined
            weights = rng.uniform(0.01, 0.99 / spec.n_trees, size=len(targets))
        else:
            weights = rng.uniform(-1.0, 1.0, size=len(targets))
        if not spec.double_thresholds:
            weights = weights.astype(np.float32).astype(np.float64)
        return Leaf(dict(zip(targets, weights.tolist(), strict=True)))

    def node(tree: int, depth: int) -> Split | Leaf:
        if depth == spec.max_depth or (depth > 0 and rng.random() < 0.25):
            return leaf(tree)
        feature = int(rng.integers(spec.n_features))
        if spec.members and rng.random() < 0.3:
            k = int(rng.integers(1, 4))
            members = tuple(sorted(rng.choice(np.arange(1, 9), k, replace=False).tolist()))
            mode, threshold = "BRANCH_MEMBER", math.nan
        else:
            members = ()
            mode = MODES[int(rng.integers(len(MODES)))]
            threshold = pools[feature][int(rng.integers(len(pools[feature])))]
        tracked = mode == "BRANCH_NEQ" and not spec.untracked_neq
        missing_true = tracked or bool(rng.random() < 0.5)
        true, false = node(tree, depth + 1), node(tree, depth + 1)
        return Split(feature, mode, threshold, missing_true, true, false, members)

    one_leaf = 0.05 if spec.one_leaf_trees else 0.0
    trees = [leaf(t) if rng.random() < one_leaf else node(t, 0) for t in range(spec.n_trees)]
    return Forest(trees, pools)


def preorder(tree: Split | Leaf) -> list[Split | Leaf]:
    """Nodes in preorder, true branch first (the order the nodes are written in)."""
    if isinstance(tree, Leaf):
        return [tree]
    return [tree, *preorder(tree.true), *preorder(tree.false)]


def v1_attributes(forest: Forest, kind: str, as_tensor: bool) -> dict[str, Any]:
    """TreeEnsembleRegressor/Classifier attributes; kind is "target" or "class"."""
    a: dict[str, list] = {
        k: []
        for k in (
            "nodes_treeids nodes_nodeids nodes_featureids nodes_modes nodes_values "
            "nodes_truenodeids nodes_falsenodeids nodes_missing_value_tracks_true "
            f"{kind}_treeids {kind}_nodeids {kind}_ids {kind}_weights"
        ).split()
    }
    for tree_id, tree in enumerate(forest.trees):
        nodes = preorder(tree)
        ids = {id(n): i for i, n in enumerate(nodes)}
        for node_id, n in enumerate(nodes):
            a["nodes_treeids"].append(tree_id)
            a["nodes_nodeids"].append(node_id)
            if isinstance(n, Leaf):
                a["nodes_featureids"].append(0)
                a["nodes_modes"].append("LEAF")
                a["nodes_values"].append(0.0)
                a["nodes_truenodeids"].append(0)
                a["nodes_falsenodeids"].append(0)
                a["nodes_missing_value_tracks_true"].append(0)
                for target, weight in n.weights.items():
                    a[f"{kind}_treeids"].append(tree_id)
                    a[f"{kind}_nodeids"].append(node_id)
                    a[f"{kind}_ids"].append(target)
                    a[f"{kind}_weights"].append(weight)
            else:
                a["nodes_featureids"].append(n.feature)
                a["nodes_modes"].append(n.mode)
                a["nodes_values"].append(n.threshold)
                a["nodes_truenodeids"].append(ids[id(n.true)])
                a["nodes_falsenodeids"].append(ids[id(n.false)])
                a["nodes_missing_value_tracks_true"].append(int(n.missing_true))
    attrs: dict[str, Any] = dict(a)
    if as_tensor:
        for name in ("nodes_values", f"{kind}_weights"):
            attrs[f"{name}_as_tensor"] = init(name, attrs.pop(name), np.float64)
    return attrs


def set_base_values(attrs: dict[str, Any], base_values: list[float] | None, as_tensor: bool):
    if base_values is None:
        return
    if as_tensor:
        attrs["base_values_as_tensor"] = init("base_values", base_values, np.float64)
    else:
        attrs["base_values"] = base_values


def tree_ensemble_v5_attributes(forest: Forest, dtype: Any) -> dict[str, Any]:
    """TreeEnsemble (ai.onnx.ml opset 5): interior nodes and leaves in separate arrays."""
    nodes: list[Split] = []
    leaves: list[Leaf] = []
    true_refs: list[tuple[int, int]] = []  # (index into nodes or leaves, is a leaf)
    false_refs: list[tuple[int, int]] = []

    def add(n: Split | Leaf) -> tuple[int, int]:
        # Preorder, true branch first: the reference reads membership sets in that order.
        if isinstance(n, Leaf):
            leaves.append(n)
            return len(leaves) - 1, 1
        index = len(nodes)
        nodes.append(n)
        true_refs.append((-1, -1))
        false_refs.append((-1, -1))
        true_refs[index] = add(n.true)
        false_refs[index] = add(n.false)
        return index, 0

    roots = []
    for tree in forest.trees:
        if isinstance(tree, Leaf):
            # A one-leaf tree is a node whose both branches are that leaf.
            roots.append(len(nodes))
            nodes.append(Split(0, "BRANCH_LEQ", 0.0, False, tree, tree))
            leaves.append(tree)
            true_refs.append((len(leaves) - 1, 1))
            false_refs.append((len(leaves) - 1, 1))
        else:
            roots.append(add(tree)[0])
    members: list[float] = []
    for n in nodes:
        if n.mode == "BRANCH_MEMBER":
            members.extend([*n.members, math.nan])
    attrs: dict[str, Any] = {
        "nodes_featureids": [n.feature for n in nodes],
        "nodes_modes": init("nodes_modes", [MODE_CODES[n.mode] for n in nodes], np.uint8),
        "nodes_splits": init("nodes_splits", [n.threshold for n in nodes], dtype),
        "nodes_truenodeids": [i for i, _ in true_refs],
        "nodes_trueleafs": [is_leaf for _, is_leaf in true_refs],
        "nodes_falsenodeids": [i for i, _ in false_refs],
        "nodes_falseleafs": [is_leaf for _, is_leaf in false_refs],
        "nodes_missing_value_tracks_true": [int(n.missing_true) for n in nodes],
        "leaf_targetids": [next(iter(leaf.weights)) for leaf in leaves],
        "leaf_weights": init(
            "leaf_weights", [next(iter(leaf.weights.values())) for leaf in leaves], dtype
        ),
        "tree_roots": roots,
    }
    if members:
        attrs["membership_values"] = init("membership_values", members, dtype)
    return attrs


def forest_inputs(
    forest: Forest, dtype: Any, n_features: int
) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Rows whose cells are NaN, a split threshold of their column, a category or anything."""
    columns = []
    for f in range(n_features):
        pool = [dtype(v) for v in forest.pools[f]]
        columns.append(
            st.one_of(
                st.just(dtype(math.nan)),
                st.sampled_from(pool),
                st.integers(0, 9).map(dtype),
                (f32_values(-20, 20) if dtype == np.float32 else f64_values(-20, 20)).map(dtype),
            )
        )

    @st.composite
    def rows(draw) -> dict[str, np.ndarray]:
        n = draw(row_counts)
        values = [[draw(columns[f]) for f in range(n_features)] for _ in range(n)]
        return {"X": np.array(values, dtype=dtype).reshape(n, n_features)}

    return rows()


@dataclass(frozen=True)
class ClassifierSpec:
    forest: ForestSpec
    version: int
    dtype: str
    post_transform: str
    labels: tuple
    binary_one_column: bool
    base_values: bool

    def model(self) -> onnx.ModelProto:
        forest = draw_forest(self.forest)
        as_tensor = self.version == 3
        attrs = v1_attributes(forest, "class", as_tensor)
        n_classes = len(self.labels)
        base = None
        if self.base_values:
            rng = np.random.default_rng(self.forest.seed + 1)
            width = 1 if self.binary_one_column else n_classes
            base = rng.uniform(-0.5, 0.5, width).astype(np.float32).astype(float).tolist()
        set_base_values(attrs, base, as_tensor)
        label_kind = "strings" if isinstance(self.labels[0], str) else "int64s"
        attrs[f"classlabels_{label_kind}"] = list(self.labels)
        node = helper.make_node(
            "TreeEnsembleClassifier",
            ["X"],
            ["label", "probabilities"],
            domain=ML,
            post_transform=self.post_transform,
            **attrs,
        )
        label_type = STRING if label_kind == "strings" else INT64
        return make_model(
            [node],
            [("X", _onnx_type(self.dtype), [None, self.forest.n_features])],
            [("label", label_type, [None]), ("probabilities", FLOAT, [None, n_classes])],
            ml_opset=self.version,
        )


@dataclass(frozen=True)
class RegressorSpec:
    forest: ForestSpec
    version: int
    dtype: str
    post_transform: str
    aggregate: str
    base_values: bool

    def model(self) -> onnx.ModelProto:
        forest = draw_forest(self.forest)
        n_targets = self.forest.n_targets
        base = None
        if self.base_values:
            rng = np.random.default_rng(self.forest.seed + 1)
            base = rng.uniform(-0.5, 0.5, n_targets).astype(np.float32).astype(float).tolist()
        if self.version == 5:
            attrs = tree_ensemble_v5_attributes(forest, np.dtype(self.dtype))
            node = helper.make_node(
                "TreeEnsemble",
                ["X"],
                ["Y"],
                domain=ML,
                n_targets=n_targets,
                aggregate_function=["AVERAGE", "SUM", "MIN", "MAX"].index(self.aggregate),
                post_transform=TreeEnsemble.POST.index(self.post_transform),
                **attrs,
            )
            out_type = _onnx_type(self.dtype)
        else:
            as_tensor = self.version == 3
            attrs = v1_attributes(forest, "target", as_tensor)
            set_base_values(attrs, base, as_tensor)
            node = helper.make_node(
                "TreeEnsembleRegressor",
                ["X"],
                ["Y"],
                domain=ML,
                n_targets=n_targets,
                aggregate_function=self.aggregate,
                post_transform=self.post_transform,
                **attrs,
            )
            out_type = FLOAT
        return make_model(
            [node],
            [("X", _onnx_type(self.dtype), [None, self.forest.n_features])],
            [("Y", out_type, [None, n_targets])],
            ml_opset=self.version,
        )


def _onnx_type(dtype: str) -> int:
    return {"float32": FLOAT, "float64": DOUBLE}[dtype]


def tree_tolerance(spec: ClassifierSpec | RegressorSpec) -> tuple[float, float]:
    if spec.post_transform == "PROBIT":
        return PROBIT_TOL
    if spec.dtype == "float64" and spec.version == 5 and spec.post_transform == "NONE":
        return F64_TOL
    return F32_TOL


@st.composite
def forest_specs(draw, *, n_targets: st.SearchStrategy[int], **overrides) -> ForestSpec:
    deep = draw(st.booleans()) and draw(st.booleans())
    values = {
        "seed": draw(st.integers(0, 2**32 - 1)),
        "n_trees": 1 if deep else draw(st.integers(1, 6)),
        "max_depth": 12 if deep else draw(st.integers(0, 5)),
        "n_features": draw(st.integers(1, 4)),
        "n_targets": draw(n_targets),
    }
    values.update(overrides)
    return ForestSpec(**values)


@st.composite
def classifier_specs(draw, version: int) -> ClassifierSpec:
    """Classifiers whose outputs the spec and the reference define (and onnxruntime agrees)."""
    n_classes = draw(st.sampled_from([2, 3, 12]))
    # Two classes: one score column, as scikit-learn's binary DecisionTree/RandomForest write it
    # (NONE, positive weights: [1 - x, x]). Other binary forms: onnxruntime_classifier_specs.
    binary_one_column = n_classes == 2
    post_transform = "NONE" if binary_one_column else draw(st.sampled_from(POST_TRANSFORMS))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    n_targets = 1 if binary_one_column else n_classes
    # Gradient-boosting style: tree i scores class i mod n only, and every class has a tree.
    sparse = {}
    if post_transform != "PROBIT" and draw(st.booleans()):
        sparse = {"sparse_weights": True, "n_trees": n_targets * draw(st.integers(1, 2))}
        sparse["max_depth"] = draw(st.integers(0, 3))
    forest = draw(
        forest_specs(
            n_targets=st.just(n_targets),
            double_thresholds=version == 3,
            positive_weights=binary_one_column or post_transform == "PROBIT",
            **sparse,
        )
    )
    if draw(st.booleans()):
        labels: tuple = tuple(f"class {i}" for i in range(n_classes))
    else:
        labels = tuple(int(v) for v in np.arange(n_classes) * 7 - 3)
    base_values = post_transform != "PROBIT" and draw(st.booleans())
    return ClassifierSpec(
        forest, version, dtype, post_transform, labels, binary_one_column, base_values
    )


@st.composite
def onnxruntime_classifier_specs(draw, version: int) -> ClassifierSpec:
    """Classifiers where the spec is silent and the reference and onnxruntime disagree: two
    classes (one score column, or two), and classes that no leaf of a row scores."""
    kind = draw(st.sampled_from(["one-column", "two-columns", "unscored-classes"]))
    post_transforms = ["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"]
    post_transform = draw(st.sampled_from(post_transforms))
    n_classes = 2 if kind != "unscored-classes" else draw(st.sampled_from([3, 12]))
    forest = draw(
        forest_specs(
            n_targets=st.just(1 if kind == "one-column" else n_classes),
            double_thresholds=version == 3,
            class_subsets=kind == "unscored-classes",
        )
    )
    if kind == "two-columns":
        labels: tuple = (0, 1)  # onnxruntime labels two weighted classes 0 or 1, whatever
    elif draw(st.booleans()):
        labels = tuple(f"class {i}" for i in range(n_classes))
    else:
        labels = tuple(int(v) for v in np.arange(n_classes) * 7 - 3)
    # onnxruntime runs v3's double attributes on float64 inputs only.
    dtype = "float64" if version == 3 else draw(st.sampled_from(["float32", "float64"]))
    return ClassifierSpec(
        forest,
        version,
        dtype,
        post_transform,
        labels,
        kind == "one-column",
        draw(st.booleans()),
    )


@st.composite
def regressor_specs(draw, version: int) -> RegressorSpec:
    """Regressors whose outputs the spec and the reference define (and onnxruntime agrees)."""
    aggregate = draw(st.sampled_from(AGGREGATES))
    # Opset 5 scores one target per leaf, so with several targets some get no score in a row:
    # MIN/MAX of nothing is undefined, and PROBIT of 0 is -inf where the reference says 0.
    one_target = version == 5 and aggregate in ("MIN", "MAX")
    post_transform = draw(st.sampled_from(("NONE", "PROBIT") if one_target else POST_TRANSFORMS))
    if one_target or (version == 5 and post_transform == "PROBIT"):
        n_targets = st.just(1)
    elif post_transform in ("LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        # onnxruntime applies no transform but PROBIT to a single target (see
        # test_single_target_post_transform_follows_onnxruntime).
        n_targets = st.integers(2, 3)
    else:
        n_targets = st.integers(1, 3)
    dtype = draw(st.sampled_from(["float32", "float64"]))
    forest = draw(
        forest_specs(
            n_targets=n_targets,
            double_thresholds=version != 1,
            one_target_per_leaf=version == 5,
            members=version == 5,
            positive_weights=post_transform == "PROBIT",
            # The reference reads a one-leaf tree's weight at the root's node index instead of
            # its leaf index (test_tree_ensemble_one_leaf_tree covers it by hand).
            one_leaf_trees=version != 5,
        )
    )
    base_values = version != 5 and post_transform != "PROBIT" and draw(st.booleans())
    return RegressorSpec(forest, version, dtype, post_transform, aggregate, base_values)


@st.composite
def onnxruntime_regressor_specs(draw, version: int) -> RegressorSpec:
    """Regressors where onnxruntime departs from the reference: LOGISTIC, SOFTMAX and
    SOFTMAX_ZERO on a single target (the spec says "apply"; onnxruntime does not), and NaN at
    BRANCH_NEQ nodes without missing-value tracking."""
    post_transform = draw(st.sampled_from(["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"]))
    forest = draw(
        forest_specs(
            n_targets=st.just(1),
            double_thresholds=version != 1,
            one_target_per_leaf=version == 5,
            members=version == 5,
            one_leaf_trees=version != 5,
            untracked_neq=True,
        )
    )
    dtype = "float64" if version == 3 else draw(st.sampled_from(["float32", "float64"]))
    aggregate = draw(st.sampled_from(AGGREGATES))
    base_values = version != 5 and draw(st.booleans())
    return RegressorSpec(forest, version, dtype, post_transform, aggregate, base_values)


@pytest.mark.parametrize("version", [1, 3], ids=["v1", "v3"])
@given(data=st.data())
def test_tree_ensemble_classifier(version: int, data: st.DataObject) -> None:
    spec = data.draw(classifier_specs(version), label="spec")
    model = spec.model()
    feeds = data.draw(
        forest_inputs(draw_forest(spec.forest), np.dtype(spec.dtype).type, spec.forest.n_features),
        label="feeds",
    )
    check_against_reference(model, feeds, tree_tolerance(spec))


@pytest.mark.parametrize("version", [1, 3, 5], ids=["v1", "v3", "TreeEnsemble-v5"])
@given(data=st.data())
def test_tree_ensemble_regressor(version: int, data: st.DataObject) -> None:
    """TreeEnsembleRegressor v1/v3, and opset 5's TreeEnsemble (with BRANCH_MEMBER)."""
    spec = data.draw(regressor_specs(version), label="spec")
    model = spec.model()
    feeds = data.draw(
        forest_inputs(draw_forest(spec.forest), np.dtype(spec.dtype).type, spec.forest.n_features),
        label="feeds",
    )
    check_against_reference(model, feeds, tree_tolerance(spec))


def tree_ensemble_v5_model(
    dtype: Any, nodes: dict[str, Any], leaves: list[float], membership: list[float] | None
) -> onnx.ModelProto:
    elem = {np.float32: FLOAT, np.float64: DOUBLE}[dtype]
    attrs = dict(nodes)
    attrs["nodes_modes"] = init("nodes_modes", attrs["nodes_modes"], np.uint8)
    attrs["nodes_splits"] = init("nodes_splits", attrs["nodes_splits"], dtype)
    attrs["leaf_weights"] = init("leaf_weights", leaves, dtype)
    if membership is not None:
        attrs["membership_values"] = init("membership_values", membership, dtype)
    node = helper.make_node(
        "TreeEnsemble",
        ["X"],
        ["Y"],
        domain=ML,
        n_targets=1,
        aggregate_function=1,
        post_transform=0,
        leaf_targetids=[0] * len(leaves),
        **attrs,
    )
    return make_model([node], [("X", elem, [None, 1])], [("Y", elem, [None, 1])], ml_opset=5)


def onnxruntime_session(model: bytes) -> ort.InferenceSession:
    """One thread: idle intra-op threads of cached sessions would spin on the test's cores."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def onnxruntime_run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return onnxruntime_session(model.SerializeToString()).run(None, feeds)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble_membership_set_containing_zero(dtype) -> None:
    """BRANCH_MEMBER {0, 2} then {3}: the reference stops reading the first set at 0.0 and
    misaligns the second, so the expectation is by hand (and onnxruntime agrees)."""
    nodes = {
        "nodes_featureids": [0, 0],
        "nodes_modes": [6, 6],
        "nodes_splits": [math.nan, math.nan],
        "nodes_truenodeids": [0, 1],
        "nodes_trueleafs": [1, 1],
        "nodes_falsenodeids": [1, 2],
        "nodes_falseleafs": [0, 1],
        "nodes_missing_value_tracks_true": [0, 1],
        "tree_roots": [0],
    }
    membership = [0.0, 2.0, math.nan, 3.0, math.nan]
    model = tree_ensemble_v5_model(dtype, nodes, [1.0, 10.0, 20.0], membership)
    x = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [math.nan], [-0.0], [0.5]], dtype)
    # 0 and -0 and 2 are in the first set; 3 in the second; NaN goes false, then true.
    expected = np.array([[1.0], [20.0], [1.0], [10.0], [20.0], [10.0], [1.0], [20.0]], dtype)
    np.testing.assert_array_equal(onnxruntime_run(model, {"X": x})[0], expected)
    assert_outputs(model, {"X": x}, {"Y": expected}, F64_TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tree_ensemble_one_leaf_tree(dtype) -> None:
    """A tree that is a single leaf (a node whose two branches are that leaf) next to a split:
    the reference reads its weight at the node's index, so the expectation is by hand."""
    nodes = {
        "nodes_featureids": [0, 0],
        "nodes_modes": [0, 0],
        "nodes_splits": [0.5, 0.0],
        "nodes_truenodeids": [0, 2],
        "nodes_trueleafs": [1, 1],
        "nodes_falsenodeids": [1, 2],
        "nodes_falseleafs": [1, 1],
        "nodes_missing_value_tracks_true": [0, 0],
        "tree_roots": [0, 1],
    }
    model = tree_ensemble_v5_model(dtype, nodes, [1.0, 2.0, 0.25], None)
    x = np.array([[0.0], [0.5], [1.0], [math.nan]], dtype)
    expected = np.array([[1.25], [1.25], [2.25], [2.25]], dtype)
    np.testing.assert_array_equal(onnxruntime_run(model, {"X": x})[0], expected)
    assert_outputs(model, {"X": x}, {"Y": expected}, F64_TOL)


# ---------------------------------------------------------------------------------------------
# Small graphs of the other ops


@dataclass(frozen=True)
class OpCase:
    """A small model and the inputs to draw for it."""

    id: str
    model: onnx.ModelProto = field(repr=False)
    feeds: st.SearchStrategy[dict[str, np.ndarray]] = field(repr=False)
    tol: tuple[float, float] = F32_TOL
    reference_feeds: Callable[[dict], dict] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"OpCase({self.id!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


ELEM = {np.float32: FLOAT, np.float64: DOUBLE, np.int64: INT64, np.bool_: BOOL, object: STRING}


def op_case(
    case_id: str,
    op: str | list[onnx.NodeProto],
    inputs: dict[str, tuple[Any, tuple[int, ...], st.SearchStrategy]],
    outputs: dict[str, tuple[int, list]],
    *,
    domain: str = "",
    ml_opset: int = 1,
    initializers: Sequence[onnx.TensorProto] = (),
    tol: tuple[float, float] = F32_TOL,
    reference_feeds: Callable[[dict], dict] | None = None,
    **attrs: Any,
) -> OpCase:
    """`op`: one op type, fed the graph inputs then the initializers, or a list of nodes.
    `inputs`: {name: (numpy dtype, shape after the batch dim, elements)};
    `outputs`: {name: (ONNX type, shape after the batch dim)}."""
    if isinstance(op, str):
        names = [*inputs, *(t.name for t in initializers)]
        nodes = [helper.make_node(op, names, list(outputs), domain=domain, **attrs)]
    else:
        nodes = op
    model = make_model(
        nodes,
        [(name, ELEM[dt], [None, *shape]) for name, (dt, shape, _) in inputs.items()],
        [(name, t, [None, *shape]) for name, (t, shape) in outputs.items()],
        initializers=initializers,
        ml_opset=ml_opset,
    )
    return OpCase(case_id, model, batch(inputs), tol, reference_feeds)


def x(dtype: Any, shape: tuple[int, ...], elements: st.SearchStrategy) -> dict:
    return {"X": (dtype, shape, elements)}


def y(elem: int, *shape: int) -> dict:
    return {"Y": (elem, list(shape))}


f32 = f32_values()
f64 = f64_values()
f32_nan = with_nan(f32)
f64_nan = with_nan(f64)
categories = st.sampled_from(["a", "b", "c", "", "zz", "A"])
known_categories = st.sampled_from(["a", "b", "c"])
small_ints = st.integers(-3, 6)
# The reference floors norms at 1e-30, so tiny magnitudes are left out of Normalizer's inputs.
normal_f32 = st.one_of(
    st.just(0.0), st.floats(2**-10, 1e3, width=32), st.floats(-1e3, -(2**-10), width=32)
)
x32 = st.one_of(st.just(np.float32(math.nan)), dyadic(np.float32))
x64 = st.one_of(st.just(math.nan), dyadic(np.float64))
FLOAT_KINDS = [("float32", np.float32, f32_nan), ("float64", np.float64, f64_nan)]


def _as_float64(feeds: dict) -> dict:
    return {k: v.astype(np.float64) for k, v in feeds.items()}


def ml_cases() -> dict[str, list[OpCase]]:
    offset, scale = [0.5, -2.0, 3.25], [2.0, 0.125, -1.0]
    cases: dict[str, list[OpCase]] = {}
    cases["Scaler"] = [
        *(
            op_case(
                f"{name}",
                "Scaler",
                x(dt, (3,), el),
                y(FLOAT, 3),
                domain=ML,
                offset=offset,
                scale=scale,
            )
            for name, dt, el in FLOAT_KINDS
        ),
        # The reference keeps an integer input's dtype; the spec's output is float.
        op_case(
            "int64",
            "Scaler",
            x(np.int64, (3,), st.integers(-1000, 1000)),
            y(FLOAT, 3),
            domain=ML,
            offset=offset,
            scale=scale,
            reference_feeds=_as_float64,
        ),
        op_case(
            "one-value-broadcast",
            "Scaler",
            x(np.float32, (3,), f32_nan),
            y(FLOAT, 3),
            domain=ML,
            offset=[1.5],
            scale=[-0.5],
        ),
    ]
    # MAX divides by the largest value (spec, onnxruntime) where the reference divides by the
    # largest absolute value: the same on the non-negative rows drawn for it.
    cases["Normalizer"] = [
        op_case(
            "MAX",
            "Normalizer",
            x(np.float32, (4,), st.floats(0, 1e3, width=32).filter(lambda v: v == 0 or v > 2**-10)),
            y(FLOAT, 4),
            domain=ML,
            norm="MAX",
        ),
        op_case(
            "L1", "Normalizer", x(np.float32, (4,), normal_f32), y(FLOAT, 4), domain=ML, norm="L1"
        ),
        op_case(
            "L2",
            "Normalizer",
            x(np.float32, (4,), with_nan(normal_f32)),
            y(FLOAT, 4),
            domain=ML,
            norm="L2",
        ),
        op_case(
            "L2-float64",
            "Normalizer",
            x(np.float64, (4,), normal_f32),
            y(FLOAT, 4),
            domain=ML,
            norm="L2",
        ),
    ]
    cases["Imputer"] = [
        *(
            op_case(
                f"nan-{name}",
                "Imputer",
                x(dt, (3,), el),
                y(DOUBLE if dt == np.float64 else FLOAT, 3),
                domain=ML,
                imputed_value_floats=[1.5, -2.25, 1e3],
                replaced_value_float=math.nan,
            )
            for name, dt, el in FLOAT_KINDS
        ),
        op_case(
            "value-one-fill",
            "Imputer",
            x(np.float32, (3,), st.one_of(st.just(np.float32(-1)), f32_nan)),
            y(FLOAT, 3),
            domain=ML,
            imputed_value_floats=[0.75],
            replaced_value_float=-1.0,
        ),
        op_case(
            "int64",
            "Imputer",
            x(np.int64, (2,), small_ints),
            y(INT64, 2),
            domain=ML,
            imputed_value_int64s=[7, -8],
            replaced_value_int64=-1,
        ),
    ]
    # No NaN: onnxruntime refuses it ("Input data ... is NaN") where the reference gives 0.
    cases["Binarizer"] = [
        op_case(
            name,
            "Binarizer",
            x(dt, (3,), st.one_of(st.just(dt(0.5)), el)),
            y(DOUBLE if dt == np.float64 else FLOAT, 3),
            domain=ML,
            threshold=0.5,
        )
        for name, dt, el in [("float32", np.float32, f32), ("float64", np.float64, f64)]
    ]
    cases["OneHotEncoder"] = [
        op_case(
            "strings-zeros-1",
            "OneHotEncoder",
            x(object, (2,), categories),
            y(FLOAT, 2, 3),
            domain=ML,
            cats_strings=["a", "b", "c"],
            zeros=1,
        ),
        op_case(
            "strings-zeros-0",
            "OneHotEncoder",
            x(object, (1,), known_categories),
            y(FLOAT, 1, 3),
            domain=ML,
            cats_strings=["a", "b", "c"],
            zeros=0,
        ),
        op_case(
            "int64-zeros-1",
            "OneHotEncoder",
            x(np.int64, (2,), small_ints),
            y(FLOAT, 2, 4),
            domain=ML,
            cats_int64s=[1, 3, 5, -2],
            zeros=1,
        ),
        op_case(
            "int64-one-dimensional",
            "OneHotEncoder",
            x(np.int64, (), st.sampled_from([1, 3, 5])),
            y(FLOAT, 3),
            domain=ML,
            cats_int64s=[1, 3, 5],
            zeros=0,
        ),
    ]
    cases["ArrayFeatureExtractor"] = [
        op_case(
            "float32",
            "ArrayFeatureExtractor",
            x(np.float32, (4,), f32_nan),
            y(FLOAT, 3),
            domain=ML,
            initializers=[init("indices", [2, 0, 2], np.int64)],
        ),
        op_case(
            "strings",
            "ArrayFeatureExtractor",
            x(object, (3,), categories),
            y(STRING, 1),
            domain=ML,
            initializers=[init("indices", [1], np.int64)],
        ),
    ]
    return cases


def label_encoder_cases() -> dict[str, list[OpCase]]:
    """LabelEncoder v2 (keys_*/values_*) and v4 (keys_tensor/values_tensor)."""
    floats = st.one_of(st.sampled_from([np.float32(v) for v in (1.5, -2.0, 0.0)]), f32_nan)
    v2 = [
        (
            "strings-to-int64s",
            object,
            categories,
            INT64,
            {"keys_strings": ["a", "b", "c"], "values_int64s": [5, 6, 7]},
        ),
        (
            "strings-to-int64s-default",
            object,
            categories,
            INT64,
            {"keys_strings": ["a", "b"], "values_int64s": [1, 0], "default_int64": 42},
        ),
        (
            "int64s-to-strings",
            np.int64,
            small_ints,
            STRING,
            {"keys_int64s": [1, 2, 5], "values_strings": ["p", "q", "r"]},
        ),
        (
            "int64s-to-strings-default",
            np.int64,
            small_ints,
            STRING,
            {"keys_int64s": [1, 2], "values_strings": ["p", "q"], "default_string": "?"},
        ),
        (
            "strings-to-strings",
            object,
            categories,
            STRING,
            {"keys_strings": ["a", "b"], "values_strings": ["x", "y"]},
        ),
        (
            "floats-to-int64s",
            np.float32,
            floats,
            INT64,
            {"keys_floats": [1.5, -2.0, 0.0], "values_int64s": [0, 1, 2]},
        ),
        (
            "floats-to-floats",
            np.float32,
            floats,
            FLOAT,
            {"keys_floats": [1.5, -2.0], "values_floats": [10.0, 20.0], "default_float": -1.0},
        ),
        (
            "int64s-to-floats",
            np.int64,
            small_ints,
            FLOAT,
            {"keys_int64s": [1, 2], "values_floats": [0.5, 0.25]},
        ),
        (
            "strings-to-floats",
            object,
            categories,
            FLOAT,
            {"keys_strings": ["a", "c"], "values_floats": [0.5, 0.25]},
        ),
    ]
    return {
        "LabelEncoder-v2": [
            op_case(
                name, "LabelEncoder", x(dt, (1,), el), y(out, 1), domain=ML, ml_opset=2, **attrs
            )
            for name, dt, el, out, attrs in v2
        ],
        "LabelEncoder-v4": [
            op_case(
                "int64-to-double",
                "LabelEncoder",
                x(np.int64, (), small_ints),
                y(DOUBLE),
                domain=ML,
                ml_opset=4,
                keys_tensor=init("keys", [1, 2, 3], np.int64),
                values_tensor=init("values", [0.1, 0.2, 1e-300], np.float64),
                default_tensor=init("default", [-0.5], np.float64),
            ),
            op_case(
                "string-to-int64",
                "LabelEncoder",
                x(object, (1,), categories),
                y(INT64, 1),
                domain=ML,
                ml_opset=4,
                keys_tensor=init("keys", np.array(["a", "b"], object)),
                values_tensor=init("values", [10, 20], np.int64),
                default_tensor=init("default", [-1], np.int64),
            ),
        ],
    }


def linear_model_cases() -> dict[str, list[OpCase]]:
    """Inputs and coefficients on a dyadic grid, so that the dot products are exact."""
    coef = [0.5, -1.0, 2.0, 0.25, 0.0, -0.75, -1.5, 1.0, 0.125]
    scores = {"Y": (INT64, []), "Z": (FLOAT, [3])}
    # Binary with one coefficient row: only LOGISTIC gives the two score columns the same
    # meaning in the reference and onnxruntime (NONE: test_linear_classifier_binary_none).
    binary = [
        op_case(
            f"binary-LOGISTIC-{kind}",
            "LinearClassifier",
            x(np.float32, (3,), x32),
            {"Y": (label, []), "Z": (FLOAT, [2])},
            domain=ML,
            coefficients=coef[:3],
            intercepts=[0.125],
            post_transform="LOGISTIC",
            **labels,
        )
        for kind, label, labels in [
            ("ints", INT64, {"classlabels_ints": [0, 1]}),
            ("strings", STRING, {"classlabels_strings": ["no", "yes"]}),
        ]
    ]
    multiclass = [
        op_case(
            f"multiclass-{post_transform}-{name}",
            "LinearClassifier",
            x(dt, (3,), el),
            scores,
            domain=ML,
            coefficients=coef,
            intercepts=[0.0, 0.5, -0.25],
            classlabels_ints=[10, 20, 30],
            post_transform=post_transform,
        )
        for post_transform in ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO")
        for name, dt, el in [("float32", np.float32, x32), ("float64", np.float64, x64)]
    ]
    extra = [
        op_case(
            "multiclass-strings-SOFTMAX",
            "LinearClassifier",
            x(np.float32, (3,), x32),
            {"Y": (STRING, []), "Z": (FLOAT, [3])},
            domain=ML,
            coefficients=coef,
            intercepts=[0.0, 0.5, -0.25],
            classlabels_strings=["x", "y", "z"],
            post_transform="SOFTMAX",
        ),
        # Scores kept inside (0, 1), where PROBIT is defined.
        op_case(
            "multiclass-PROBIT",
            "LinearClassifier",
            x(np.float32, (3,), dyadic(np.float32)),
            scores,
            domain=ML,
            coefficients=[c / 64 for c in coef],
            intercepts=[0.5, 0.375, 0.625],
            classlabels_ints=[0, 1, 2],
            post_transform="PROBIT",
            tol=PROBIT_TOL,
        ),
    ]
    regressors = [
        op_case(
            f"{targets}-targets-{name}",
            "LinearRegressor",
            x(dt, (3,), el),
            y(FLOAT, targets),
            domain=ML,
            coefficients=coef[: 3 * targets],
            intercepts=[0.5, -4.0][:targets],
            targets=targets,
            post_transform="NONE",
        )
        for targets in (1, 2)
        for name, dt, el in [("float32", np.float32, x32), ("float64", np.float64, x64)]
    ]
    return {"LinearClassifier": binary + multiclass + extra, "LinearRegressor": regressors}


INT64_MAX = np.iinfo(np.int64).max


def tensor_cases() -> dict[str, list[OpCase]]:
    """Default-domain ops, as skl2onnx and the exact graphs use them."""
    i64 = st.integers(-(2**40), 2**40)
    cast = [
        ("float32-to-float64", np.float32, f32_nan, DOUBLE, F64_TOL),
        ("float64-to-float32", np.float64, f64_nan, FLOAT, F32_TOL),
        ("float32-to-int64", np.float32, f32_values(-1e6, 1e6), INT64, F32_TOL),
        ("float64-to-int64", np.float64, f64_values(-1e9, 1e9), INT64, F32_TOL),
        ("int64-to-float32", np.int64, i64, FLOAT, F32_TOL),
        ("int64-to-float64", np.int64, i64, DOUBLE, F64_TOL),
        ("bool-to-float32", np.bool_, st.booleans(), FLOAT, F32_TOL),
        ("float32-to-bool", np.float32, st.one_of(st.just(np.float32(0)), f32_nan), BOOL, F32_TOL),
    ]
    cases: dict[str, list[OpCase]] = {}
    cases["Cast"] = [
        op_case(name, "Cast", x(dt, (3,), el), y(to, 3), to=to, tol=tol)
        for name, dt, el, to, tol in cast
    ]
    # Cast(FLOAT) then Cast(DOUBLE): how the exact graphs encode scikit-learn's float32 cast.
    cases["Cast"].append(
        op_case(
            "float64-through-float32",
            [
                helper.make_node("Cast", ["X"], ["X32"], to=FLOAT),
                helper.make_node("Cast", ["X32"], ["Y"], to=DOUBLE),
            ],
            x(np.float64, (3,), f64_nan),
            y(DOUBLE, 3),
            tol=(0.0, 0.0),
        )
    )
    cases["Concat"] = [
        op_case(
            "float32-axis-1",
            "Concat",
            {"A": (np.float32, (2,), f32_nan), "B": (np.float32, (3,), f32_nan)},
            y(FLOAT, 5),
            axis=1,
        ),
        op_case(
            "int64-three-inputs-axis-minus-1",
            "Concat",
            {k: (np.int64, (1,), small_ints) for k in "ABC"},
            y(INT64, 3),
            axis=-1,
        ),
        op_case(
            "strings",
            "Concat",
            {"A": (object, (1,), categories), "B": (object, (2,), categories)},
            y(STRING, 3),
            axis=1,
        ),
    ]
    cases["Identity"] = [
        op_case("float64", "Identity", x(np.float64, (3,), f64_nan), y(DOUBLE, 3)),
        op_case("strings", "Identity", x(object, (2,), categories), y(STRING, 2)),
    ]
    cases["Reshape"] = [
        op_case(
            f"{source}-to-{shape}",
            "Reshape",
            x(np.float32, source, f32_nan),
            y(FLOAT, *out),
            initializers=[init("shape", shape, np.int64)],
        )
        for source, shape, out in [
            ((6,), [-1, 2, 3], (2, 3)),
            ((6,), [0, 3, 2], (3, 2)),
            ((2, 3), [-1, 6], (6,)),
        ]
    ]
    cases["Flatten"] = [
        op_case(f"axis-{axis}", "Flatten", x(np.float32, (2, 3), f32_nan), y(FLOAT, 6), axis=axis)
        for axis in (1, -2)
    ]
    cases["Flatten"].append(
        op_case("two-dimensional", "Flatten", x(np.int64, (4,), small_ints), y(INT64, 4), axis=1)
    )
    cases["Gather"] = [
        op_case(
            name,
            "Gather",
            x(dt, (4,), el),
            y(elem, *out),
            axis=1,
            initializers=[init("indices", indices, np.int64)],
        )
        for name, dt, el, elem, indices, out in [
            ("indices", np.float32, f32_nan, FLOAT, [2, 0, 2], (3,)),
            ("scalar-negative-index", np.float32, f32_nan, FLOAT, -1, ()),
            ("two-dimensional-indices", np.float32, f32_nan, FLOAT, [[0, 1], [3, 3]], (2, 2)),
            ("strings", object, categories, STRING, [1, 3], (2,)),
        ]
    ]
    cases["Slice"] = [
        op_case(
            name,
            "Slice",
            x(np.float32, (6,), f32_nan),
            y(FLOAT, width),
            initializers=[
                init(k, v, np.int64)
                for k, v in zip(("starts", "ends", "axes", "steps"), args, strict=False)
            ],
        )
        for name, width, args in [
            ("start-end", 4, ([1], [5], [1])),
            ("step-2", 3, ([0], [6], [1], [2])),
            ("negative-start-to-max", 3, ([-3], [INT64_MAX], [-1])),
            ("reversed", 6, ([-1], [-INT64_MAX], [1], [-1])),
            ("all-axes", 3, ([0, 1], [INT64_MAX, 4])),
        ]
    ]
    cases["Squeeze"] = [
        op_case(
            "axis-1",
            "Squeeze",
            x(np.float32, (1, 3), f32_nan),
            y(FLOAT, 3),
            initializers=[init("axes", [1], np.int64)],
        )
    ]
    cases["Unsqueeze"] = [
        op_case(
            f"axis-{axis}",
            "Unsqueeze",
            x(np.float32, (3,), f32_nan),
            y(FLOAT, *out),
            initializers=[init("axes", [axis], np.int64)],
        )
        for axis, out in [(1, (1, 3)), (-1, (3, 1))]
    ]
    for op in ("Add", "Sub", "Mul", "Div"):
        cases[op] = [
            op_case(
                "float32-row-constant",
                op,
                x(np.float32, (3,), f32_nan),
                y(FLOAT, 3),
                initializers=[init("C", [0.5, -3.0, 0.0], np.float32)],
            ),
            op_case(
                "float64-two-inputs",
                op,
                {"A": (np.float64, (3,), f64_nan), "B": (np.float64, (3,), f64_nan)},
                y(DOUBLE, 3),
                tol=F64_TOL,
            ),
            op_case(
                "float32-column-broadcast",
                op,
                {"A": (np.float32, (3,), f32_nan), "B": (np.float32, (1,), f32_nan)},
                y(FLOAT, 3),
            ),
        ]
        if op != "Div":
            cases[op].append(
                op_case(
                    "int64",
                    op,
                    {"A": (np.int64, (2,), i64), "B": (np.int64, (2,), i64)},
                    y(INT64, 2),
                )
            )
    cases["Abs"] = [
        op_case("float32", "Abs", x(np.float32, (3,), f32_nan), y(FLOAT, 3)),
        op_case("int64", "Abs", x(np.int64, (3,), i64), y(INT64, 3)),
    ]
    cases["Sigmoid"] = [
        op_case(name, "Sigmoid", x(dt, (3,), el), y(ELEM[dt], 3), tol=tol)
        for name, dt, el, tol in [
            ("float32", np.float32, with_nan(f32_values(-100, 100)), F32_TOL),
            ("float64", np.float64, with_nan(f64_values(-100, 100)), (1e-12, 1e-15)),
        ]
    ]
    cases["Softmax"] = [
        op_case(
            f"{name}-axis-{axis}",
            "Softmax",
            x(dt, shape, with_nan(st.floats(-50, 50, width=32))),
            y(ELEM[dt], *shape),
            axis=axis,
            tol=tol,
        )
        for name, dt, tol in [("float32", np.float32, F32_TOL), ("float64", np.float64, F64_TOL)]
        for shape, axis in [((4,), -1), ((4,), 1), ((2, 3), 1), ((2, 3), -1)]
    ]
    ties = st.sampled_from([np.float32(v) for v in (-1.0, 0.0, 0.5, 2.0)])
    cases["ArgMax"] = [
        op_case(
            f"keepdims-{keepdims}-select-last-{last}-axis-{axis}",
            "ArgMax",
            x(np.float32, (4,), ties),
            y(INT64, *([1] if keepdims else [])),
            axis=axis,
            keepdims=keepdims,
            select_last_index=last,
        )
        for keepdims in (0, 1)
        for last in (0, 1)
        for axis in (1, -1)
    ]
    cases["ReduceSum"] = [
        op_case(
            f"{dt.__name__}-{shape}-axes-{axes}-keepdims-{keepdims}",
            "ReduceSum",
            x(dt, shape, st.one_of(st.just(dt(math.nan)), dyadic(dt))),
            y(ELEM[dt], *out),
            keepdims=keepdims,
            initializers=[init("axes", axes, np.int64)],
        )
        for dt, shape, axes, keepdims, out in [
            (np.float32, (3,), [1], 1, (1,)),
            (np.float32, (3,), [-1], 0, ()),
            (np.float64, (2, 3), [1, 2], 0, ()),
            (np.float32, (2, 3), [-1], 1, (2, 1)),
        ]
    ]
    cases["IsNaN"] = [
        op_case(name, "IsNaN", x(dt, (3,), el), y(BOOL, 3)) for name, dt, el in FLOAT_KINDS
    ]
    cases["Where"] = [
        op_case(
            "bool-input",
            "Where",
            {
                "C": (np.bool_, (3,), st.booleans()),
                "A": (np.float32, (3,), f32_nan),
                "B": (np.float32, (3,), f32_nan),
            },
            y(FLOAT, 3),
        ),
        # IsNaN + Where with a float64 fill: the exact graphs' SimpleImputer.
        op_case(
            "impute-nan-float64",
            [
                helper.make_node("IsNaN", ["X"], ["missing"]),
                helper.make_node("Where", ["missing", "fill", "X"], ["Y"]),
            ],
            x(np.float64, (3,), f64_nan),
            y(DOUBLE, 3),
            initializers=[init("fill", [0.1, -2.5, 1e10], np.float64)],
            tol=F64_TOL,
        ),
    ]
    cases["MatMul"] = [
        op_case(
            f"{dt.__name__}-{len(shape)}d-weights",
            "MatMul",
            x(dt, (3,), st.one_of(st.just(dt(math.nan)), dyadic(dt))),
            y(ELEM[dt], *shape[1:]),
            initializers=[init("W", np.arange(np.prod(shape)).reshape(shape) / 4 - 1, dt)],
        )
        for dt in (np.float32, np.float64)
        for shape in [(3, 2), (3,)]
    ]
    w = np.array([[0.5, -1.0], [2.0, 0.25], [0.0, -0.75]])
    gemm = [
        ("C-row", {}, w, [0.5, -2.0]),
        ("transB-alpha-beta", {"transB": 1, "alpha": 0.5, "beta": 2.0}, w.T, [0.25]),
        ("no-C", {"alpha": -2.0}, w, None),
        ("C-one-by-two", {"beta": -1.0}, w, [[1.0, 2.0]]),
    ]
    cases["Gemm"] = [
        op_case(
            f"{name}-{dt.__name__}",
            "Gemm",
            x(dt, (3,), st.one_of(st.just(dt(math.nan)), dyadic(dt))),
            y(ELEM[dt], 2),
            initializers=[init("W", weights, dt)] + ([] if c is None else [init("C", c, dt)]),
            **attrs,
        )
        for name, attrs, weights, c in gemm
        for dt in (np.float32, np.float64)
    ]
    # transA: (W^T X^T)^T through an identity, so the output is batch-first again.
    cases["Gemm"].append(
        op_case(
            "transA",
            [
                helper.make_node("Gemm", ["W", "X"], ["T"], transA=1, transB=1),
                helper.make_node("Gemm", ["T", "I"], ["Y"], transA=1),
            ],
            x(np.float32, (3,), dyadic(np.float32)),
            y(FLOAT, 2),
            initializers=[init("W", w, np.float32), init("I", np.eye(2), np.float32)],
        )
    )
    return cases


def grouped_cases() -> dict[str, list[OpCase]]:
    """Cases by op, grouped so that one hypothesis run covers a few related ops (each group
    is one test; the fast profile's examples are shared by the group's cases)."""
    by_op = {**ml_cases(), **label_encoder_cases(), **linear_model_cases(), **tensor_cases()}
    groups = {
        "Scaler-Normalizer-Binarizer": ["Scaler", "Normalizer", "Binarizer"],
        "Imputer": ["Imputer"],
        "OneHotEncoder-ArrayFeatureExtractor": ["OneHotEncoder", "ArrayFeatureExtractor"],
        "LabelEncoder": ["LabelEncoder-v2", "LabelEncoder-v4"],
        "LinearClassifier": ["LinearClassifier"],
        "LinearRegressor-MatMul-Gemm": ["LinearRegressor", "MatMul", "Gemm"],
        "Cast-Identity": ["Cast", "Identity"],
        "Concat-Gather-Slice": ["Concat", "Gather", "Slice"],
        "Reshape-Flatten-Squeeze-Unsqueeze": ["Reshape", "Flatten", "Squeeze", "Unsqueeze"],
        "Add-Sub-Mul-Div": ["Add", "Sub", "Mul", "Div"],
        "Abs-Sigmoid-IsNaN-Where": ["Abs", "Sigmoid", "IsNaN", "Where"],
        "Softmax-ArgMax-ReduceSum": ["Softmax", "ArgMax", "ReduceSum"],
    }
    assert sorted(op for ops in groups.values() for op in ops) == sorted(by_op)
    return {
        group: [dataclasses.replace(c, id=f"{op} {c.id}") for op in ops for c in by_op[op]]
        for group, ops in groups.items()
    }


OP_CASES = grouped_cases()


@pytest.mark.parametrize("group", list(OP_CASES))
@given(data=st.data())
def test_ops_against_reference(group: str, data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(OP_CASES[group]), label="case")
    feeds = data.draw(case.feeds, label="feeds")
    check_against_reference(case.model, feeds, case.tol, case.reference_feeds)


# ---------------------------------------------------------------------------------------------
# Where the reference does not apply


@given(feeds=batch(x(object, (1,), categories)))
def test_label_encoder_v1_strings_to_int64(feeds: dict[str, np.ndarray]) -> None:
    """v1 maps a string to its index in classes_strings (the reference has no v1)."""
    classes = ["b", "a", "zz"]
    node = helper.make_node(
        "LabelEncoder", ["X"], ["Y"], domain=ML, classes_strings=classes, default_int64=-7
    )
    model = make_model([node], [("X", STRING, [None, 1])], [("Y", INT64, [None, 1])])
    lookup = {c: i for i, c in enumerate(classes)}
    expected = np.array([[lookup.get(v, -7) for v in row] for row in feeds["X"]], np.int64)
    assert_outputs(model, feeds, {"Y": expected.reshape(-1, 1)}, F32_TOL)


@given(feeds=batch(x(np.int64, (), small_ints)))
def test_label_encoder_v1_int64_to_strings(feeds: dict[str, np.ndarray]) -> None:
    """v1 maps an index to classes_strings, "_Unused" (the default default_string) outside."""
    classes = ["b", "a", "zz"]
    node = helper.make_node("LabelEncoder", ["X"], ["Y"], domain=ML, classes_strings=classes)
    model = make_model([node], [("X", INT64, [None])], [("Y", STRING, [None])])
    expected = np.array(
        [classes[v] if 0 <= v < len(classes) else "_Unused" for v in feeds["X"]], object
    )
    assert_outputs(model, feeds, {"Y": expected}, F32_TOL)


# ---------------------------------------------------------------------------------------------
# Where the spec is silent or onnxruntime departs from it: onnxruntime's answer
#
# edgewise runs a graph in onnxruntime when the plan refuses it, and a model's scores must not
# depend on the engine. So where the reference and onnxruntime disagree, onnxruntime is the
# oracle, and where onnxruntime's result is an accident the plan refuses the graph.


def check_against_onnxruntime(
    model: onnx.ModelProto, feeds: dict[str, np.ndarray], tol: tuple[float, float]
) -> None:
    session = onnxruntime_session(model.SerializeToString())
    names = [o.name for o in session.get_outputs()]
    expected = dict(zip(names, session.run(None, feeds), strict=True))
    assert_outputs(model, feeds, expected, tol)


@given(data=st.data())
def test_tree_classifier_follows_onnxruntime_where_the_reference_differs(
    data: st.DataObject,
) -> None:
    version = data.draw(st.sampled_from([1, 3]), label="version")
    spec = data.draw(onnxruntime_classifier_specs(version), label="spec")
    forest = draw_forest(spec.forest)
    dtype = np.dtype(spec.dtype).type
    feeds = data.draw(forest_inputs(forest, dtype, spec.forest.n_features), label="feeds")
    check_against_onnxruntime(spec.model(), feeds, F32_TOL)


@given(data=st.data())
def test_tree_regressor_follows_onnxruntime_where_the_reference_differs(
    data: st.DataObject,
) -> None:
    version = data.draw(st.sampled_from([1, 3, 5]), label="version")
    spec = data.draw(onnxruntime_regressor_specs(version), label="spec")
    forest = draw_forest(spec.forest)
    dtype = np.dtype(spec.dtype).type
    feeds = data.draw(forest_inputs(forest, dtype, spec.forest.n_features), label="feeds")
    check_against_onnxruntime(spec.model(), feeds, F32_TOL)


def onnxruntime_op_cases() -> list[OpCase]:
    binary = [
        op_case(
            f"LinearClassifier binary {post_transform} {kind}",
            "LinearClassifier",
            x(np.float32, (3,), x32),
            {"Y": (label, []), "Z": (FLOAT, [2])},
            domain=ML,
            coefficients=[0.5, -1.0, 0.25],
            intercepts=[0.125],
            post_transform=post_transform,
            **labels,
        )
        # One coefficient row: onnxruntime writes [1 - s, s] and applies no softmax.
        for post_transform in ("NONE", "SOFTMAX", "SOFTMAX_ZERO")
        for kind, label, labels in [
            ("ints", INT64, {"classlabels_ints": [0, 1]}),
            ("strings", STRING, {"classlabels_strings": ["no", "yes"]}),
        ]
    ]
    # MAX divides by the largest value (as the spec writes it), not the largest absolute one.
    normalizer = op_case(
        "Normalizer MAX negative values",
        "Normalizer",
        x(np.float32, (4,), normal_f32),
        y(FLOAT, 4),
        domain=ML,
        norm="MAX",
    )
    return [*binary, normalizer]


ONNXRUNTIME_CASES = onnxruntime_op_cases()


@given(data=st.data())
def test_ops_follow_onnxruntime_where_the_reference_differs(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(ONNXRUNTIME_CASES), label="case")
    check_against_onnxruntime(case.model, data.draw(case.feeds, label="feeds"), case.tol)


def undefined_in_onnxruntime() -> dict[str, onnx.ModelProto]:
    """Graphs onnxruntime runs but answers by accident: NaN or uninitialised probabilities, or
    labels outside classlabels."""
    one_column = Split(0, "BRANCH_LEQ", 0.5, False, Leaf({0: -0.5}), Leaf({0: 0.25}))
    two_columns = Split(0, "BRANCH_LEQ", 0.5, False, Leaf({0: 0.75, 1: 0.25}), Leaf({1: 1.0}))
    models = {}
    for name, tree, labels, post_transform in [
        ("trees-binary-one-column-PROBIT", one_column, [0, 1], "PROBIT"),
        ("trees-two-columns-labels-not-0-1", two_columns, [-3, 4], "NONE"),
    ]:
        node = helper.make_node(
            "TreeEnsembleClassifier",
            ["X"],
            ["label", "probabilities"],
            domain=ML,
            classlabels_int64s=labels,
            post_transform=post_transform,
            **v1_attributes(Forest([tree]), "class", as_tensor=False),
        )
        models[name] = make_model(
            [node],
            [("X", FLOAT, [None, 1])],
            [("label", INT64, [None]), ("probabilities", FLOAT, [None, 2])],
        )
    node = helper.make_node(
        "LinearClassifier",
        ["X"],
        ["Y", "Z"],
        domain=ML,
        coefficients=[1.0],
        intercepts=[0.5],
        classlabels_ints=[0, 1],
        post_transform="PROBIT",
    )
    models["linear-binary-PROBIT"] = make_model(
        [node], [("X", FLOAT, [None, 1])], [("Y", INT64, [None]), ("Z", FLOAT, [None, 2])]
    )
    return models


@pytest.mark.parametrize("name", list(undefined_in_onnxruntime()))
def test_graphs_onnxruntime_answers_by_accident_are_refused(name: str) -> None:
    model = undefined_in_onnxruntime()[name].SerializeToString()
    onnxruntime_session(model).run(None, {"X": np.array([[0.0], [1.0]], np.float32)})
    assert Plan.unsupported(model)
    with pytest.raises(UnsupportedModelError):
        Plan(model)
