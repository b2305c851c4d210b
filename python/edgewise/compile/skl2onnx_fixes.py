"""Targeted fixes for skl2onnx bugs that break conversion with current library releases.

skl2onnx 1.20 marks HistGradientBoosting leaves with ``missing = False`` (a Python bool) in
``nodes_missing_value_tracks_true``; current onnx/protobuf reject a bool in an ints attribute
("Expected an int, got a boolean"). We wrap the tree-walking function that the converters
import and turn that attribute back into ints after each tree, which is all the fix needs.
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
    from skl2onnx.operator_converters import random_forest

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
    _applied = True
