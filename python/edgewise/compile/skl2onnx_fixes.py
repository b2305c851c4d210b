"""Targeted fixes for skl2onnx bugs that break conversion with current library releases.

Both are in skl2onnx's tree converters, which only the float32 graph uses: the exact graph
(`exact/`) builds its trees from the fitted estimator.

skl2onnx 1.20 marks HistGradientBoosting leaves with ``missing = False`` (a Python bool) in
``nodes_missing_value_tracks_true``; current onnx/protobuf reject a bool in an ints attribute
("Expected an int, got a boolean"). We wrap the tree-walking function that the converters
import and turn that attribute back into ints after each tree, which is all the fix needs.

skl2onnx 1.20 also writes ``nodes_missing_value_tracks_true = 0`` for every node of a
scikit-learn ``Tree`` (DecisionTree*, RandomForest*, ExtraTrees*), so the graph sends a NaN to
the false (right) branch, while scikit-learn (>= 1.3) sends it where ``tree.missing_go_to_left``
says: learned from NaNs in training, or else the child that saw more samples. These estimators
score NaN without an imputer, so the probe lets missing values through, and the graph would score
those rows differently. We wrap the tree-walking function of the decision tree and forest
converters and copy ``missing_go_to_left`` into the flags of each tree's branch nodes.
"""

from __future__ import annotations

import functools
from typing import Any

_ATTRIBUTE = "nodes_missing_value_tracks_true"
_applied = False


def apply() -> None:
    """Install the fixes once per process. Safe to call repeatedly."""
    global _applied
    if _applied:
        return
    from skl2onnx.common import tree_ensemble
    from skl2onnx.operator_converters import decision_tree, random_forest

    original = random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting

    @functools.wraps(original)
    def add_tree_with_int_missing_flags(attr_pairs: dict[str, Any], *args: Any, **kw: Any) -> Any:
        result = original(attr_pairs, *args, **kw)
        if _ATTRIBUTE in attr_pairs:
            attr_pairs[_ATTRIBUTE] = [int(flag) for flag in attr_pairs[_ATTRIBUTE]]
        return result

    random_forest.add_tree_to_attribute_pairs_hist_gradient_boosting = (
        add_tree_with_int_missing_flags
    )

    add_tree = tree_ensemble.add_tree_to_attribute_pairs

    @functools.wraps(add_tree)
    def add_tree_with_missing_directions(
        attr_pairs: dict[str, Any], is_classifier: bool, tree: Any, *args: Any, **kw: Any
    ) -> Any:
        first = len(attr_pairs[_ATTRIBUTE])
        result = add_tree(attr_pairs, is_classifier, tree, *args, **kw)
        go_left = getattr(tree, "missing_go_to_left", None)  # scikit-learn >= 1.3
        if go_left is not None:
            # One node per tree node, in node order, starting at `first`.
            modes = attr_pairs["nodes_modes"]
            flags = attr_pairs[_ATTRIBUTE]
            for node in range(first, len(flags)):
                flags[node] = int(modes[node] != "LEAF" and bool(go_left[node - first]))
        return result

    decision_tree.add_tree_to_attribute_pairs = add_tree_with_missing_directions
    random_forest.add_tree_to_attribute_pairs = add_tree_with_missing_directions
    _applied = True
