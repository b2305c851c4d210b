"""Node visits of scikit-learn's tree models: for each row and tree, the depth of the leaf the
row reaches (the branches it passed through). Only numpy here, so that the peers' own
environments (`_forest_peer.py`) count their forests the same way as `breakdown.py`."""

from __future__ import annotations

from typing import Any

import numpy as np


def sklearn_tree_visits(estimator: Any, features: Any) -> tuple[np.ndarray, int]:
    """DecisionTree, RandomForest, ExtraTrees, GradientBoosting: `apply` (which casts X to
    float32 as predict does) gives each row's leaf; its depth is the nodes visited. Each row's
    visits summed over the trees, and the number of trees."""
    leaves = np.asarray(estimator.apply(features))
    trees = [estimator] if hasattr(estimator, "tree_") else list(np.ravel(estimator.estimators_))
    leaves = leaves.reshape(len(leaves), -1)
    if leaves.shape[1] != len(trees):
        raise SystemExit(f"{type(estimator).__name__}: {leaves.shape[1]} leaves per row, {trees}")
    visits = np.zeros(len(leaves))
    for column, tree in enumerate(trees):
        depth = node_depths(tree.tree_.children_left, tree.tree_.children_right)
        visits += depth[leaves[:, column]]
    return visits, len(trees)


def node_depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each node's depth (the root's is 0) from scikit-learn's child arrays (-1 at leaves)."""
    depth = np.zeros(len(left), dtype=np.int64)
    frontier, level = np.array([0]), 0
    while frontier.size:
        depth[frontier] = level
        inner = frontier[left[frontier] != -1]
        frontier = np.concatenate([left[inner], right[inner]])
        level += 1
    return depth
