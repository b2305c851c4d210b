"""SimpleImputer as `Where(IsNaN(x), statistics_, x)` with float64 fill values.

skl2onnx writes the ai.onnx.ml `Imputer` operator, whose fill values are float32 attributes
(a median of 40351.64 comes back 6e-4 off) and which onnxruntime cannot run on float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto


def convert_simple_imputer(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for a numeric SimpleImputer with float64 input. `support.py` has
    checked that its missing values are NaN and every statistic is finite."""
    from skl2onnx.operator_converters.common import concatenate_variables

    imputer = operator.raw_operator
    # scikit-learn fills with the statistics in the dtype it was fitted on: float32 statistics
    # for a pipeline fitted on float32 columns, even when it transforms float64 ones.
    fill_dtype = getattr(imputer, "_fill_dtype", np.float64)
    statistics = np.asarray(imputer.statistics_).astype(fill_dtype).astype(np.float64)
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("imputer_fill")
    container.add_initializer(fill, TensorProto.DOUBLE, [statistics.size], statistics.tolist())
    missing = scope.get_unique_variable_name("imputer_missing")
    container.add_node("IsNaN", [x], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [missing, fill, x],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )
