"""Fitted scikit-learn trees as one ai.onnx.ml opset-5 `TreeEnsemble` node.

Opset 5 is the only tree operator that stores splits and leaf weights as tensors of the input
type, so a float64 graph keeps scikit-learn's float64 thresholds and leaf values unrounded
(the v1/v3 operators that skl2onnx writes hold them as float32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import NodeProto, helper, numpy_helper

BRANCH_LEQ = 0
BRANCH_MEMBER = 6
AGGREGATE_SUM = 1
POST_TRANSFORM_NONE = 0


@dataclass(frozen=True)
class Tree:
    """One tree as per-node arrays; node 0 is the root.

    `true_child` is taken when `x <= split` (or, for a node in `members`, when x is one of its
    members); `missing_true` says whether NaN takes the true child. `weight` is read at leaves.
    """

    is_leaf: np.ndarray
    true_child: np.ndarray
    false_child: np.ndarray
    feature: np.ndarray
    split: np.ndarray
    missing_true: np.ndarray
    weight: np.ndarray
    target: int
    members: dict[int, list[float]] = field(default_factory=dict)


def from_sklearn_tree(tree: Any, target: int, column: int = 0, scale: float = 1.0) -> Tree:
    """A `sklearn.tree._tree.Tree` (DecisionTree*, forests, GradientBoosting stages).

    `column` picks the class whose fraction the leaves hold; `scale` is GradientBoosting's
    learning rate, multiplied in the same float64 product scikit-learn computes per stage.
    """
    is_leaf = tree.children_left == -1
    weight = tree.value[:, 0, column]
    return Tree(
        is_leaf=is_leaf,
        true_child=tree.children_left,
        false_child=tree.children_right,
        feature=tree.feature,
        split=tree.threshold,
        missing_true=tree.missing_go_to_left.astype(bool),
        weight=weight * scale if scale != 1.0 else weight,
        target=target,
    )


def from_hgb_predictor(
    predictor: Any, known_categories: np.ndarray, bitset_row: np.ndarray, target: int
) -> Tree:
    """A HistGradientBoosting `TreePredictor` (leaf values already include the learning rate).

    A categorical node sends a category left when it is in the node's left bitset, right when
    it is another category seen in training, and NaN or an unseen category the way missing
    values go. BRANCH_MEMBER can express "in the set" and "NaN/not in the set" only, so the set
    tested is the one whose branch unseen values do not take, swapping the children if needed.
    """
    nodes = predictor.nodes
    is_leaf = nodes["is_leaf"].astype(bool)
    true_child = nodes["left"].astype(np.int64)
    false_child = nodes["right"].astype(np.int64)
    missing_true = nodes["missing_go_to_left"].astype(bool)
    members: dict[int, list[float]] = {}
    for i in np.flatnonzero(nodes["is_categorical"].astype(bool) & ~is_leaf):
        left = _bitset_values(predictor.raw_left_cat_bitsets[nodes["bitset_idx"][i]])
        if missing_true[i]:
            known = _bitset_values(known_categories[bitset_row[nodes["feature_idx"][i]]])
            members[int(i)] = np.setdiff1d(known, left).tolist()
            true_child[i], false_child[i] = false_child[i], true_child[i]
        else:
            members[int(i)] = left.tolist()
        missing_true[i] = False  # NaN is never a member: it takes the false child
    return Tree(
        is_leaf=is_leaf,
        true_child=true_child,
        false_child=false_child,
        feature=nodes["feature_idx"],
        split=nodes["num_threshold"],
        missing_true=missing_true,
        weight=nodes["value"],
        target=target,
        members=members,
    )


def _bitset_values(words: np.ndarray) -> np.ndarray:
    """The category codes (0-255) set in a scikit-learn bitset of eight uint32 words."""
    bits = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little")
    return np.flatnonzero(bits).astype(np.float64)


def tree_ensemble_node(trees: list[Tree], n_targets: int, x: str, y: str, name: str) -> NodeProto:
    """`y[:, t] = sum of the leaf weights of every tree with target t`, all in float64."""
    columns: dict[str, list[np.ndarray]] = {key: [] for key in _NODE_ATTRIBUTES}
    membership: list[float] = []
    roots, leaf_targets, leaf_weights = [], [], []
    n_nodes = n_leaves = 0
    for tree in trees:
        leaves = np.flatnonzero(tree.is_leaf)
        roots.append(n_nodes)
        if tree.is_leaf[0]:
            # A tree that is a single leaf: TreeEnsemble needs a branch node at the root, so
            # add one whose both children are that leaf.
            _append(
                columns,
                feature=0,
                mode=BRANCH_LEQ,
                split=0.0,
                missing=False,
                true=n_leaves,
                true_leaf=True,
                false=n_leaves,
                false_leaf=True,
            )
            n_nodes += 1
        else:
            branches = np.flatnonzero(~tree.is_leaf)
            # New ids: branches numbered in node order, leaves likewise, each after the
            # previous trees'.
            new_id = np.empty(len(tree.is_leaf), dtype=np.int64)
            new_id[branches] = n_nodes + np.arange(len(branches))
            new_id[leaves] = n_leaves + np.arange(len(leaves))
            true_child, false_child = tree.true_child[branches], tree.false_child[branches]
            modes = np.full(len(branches), BRANCH_LEQ)
            for position, node in enumerate(branches.tolist()):
                if node in tree.members:
                    modes[position] = BRANCH_MEMBER
                    membership += [*tree.members[node], np.nan]  # NaN ends each set
            _append(
                columns,
                feature=tree.feature[branches],
                mode=modes,
                split=np.where(modes == BRANCH_MEMBER, np.nan, tree.split[branches]),
                missing=tree.missing_true[branches],
                true=new_id[true_child],
                true_leaf=tree.is_leaf[true_child],
                false=new_id[false_child],
                false_leaf=tree.is_leaf[false_child],
            )
            n_nodes += len(branches)
        leaf_targets.append(np.full(len(leaves), tree.target))
        leaf_weights.append(tree.weight[leaves])
        n_leaves += len(leaves)

    def joined(key: str) -> np.ndarray:
        return np.concatenate(columns[key])

    def ints(key: str) -> list[int]:
        return list(joined(key).astype(np.int64).tolist())

    attributes: dict[str, Any] = {
        "n_targets": n_targets,
        "aggregate_function": AGGREGATE_SUM,
        "post_transform": POST_TRANSFORM_NONE,
        "tree_roots": roots,
        "nodes_featureids": ints("feature"),
        "nodes_modes": numpy_helper.from_array(joined("mode").astype(np.uint8), "nodes_modes"),
        "nodes_splits": _doubles(joined("split"), "nodes_splits"),
        "nodes_truenodeids": ints("true"),
        "nodes_trueleafs": ints("true_leaf"),
        "nodes_falsenodeids": ints("false"),
        "nodes_falseleafs": ints("false_leaf"),
        "nodes_missing_value_tracks_true": ints("missing"),
        "leaf_targetids": list(np.concatenate(leaf_targets).astype(np.int64).tolist()),
        "leaf_weights": _doubles(np.concatenate(leaf_weights), "leaf_weights"),
    }
    if membership:
        attributes["membership_values"] = _doubles(np.array(membership), "membership_values")
    return helper.make_node("TreeEnsemble", [x], [y], name=name, domain="ai.onnx.ml", **attributes)


_NODE_ATTRIBUTES = (
    "feature",
    "mode",
    "split",
    "missing",
    "true",
    "true_leaf",
    "false",
    "false_leaf",
)


def _append(columns: dict[str, list[np.ndarray]], **values: Any) -> None:
    for key, value in values.items():
        columns[key].append(np.atleast_1d(np.asarray(value)))


def _doubles(values: np.ndarray, name: str) -> Any:
    return numpy_helper.from_array(values.astype(np.float64), name)
