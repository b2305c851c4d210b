"""The exact graph: one standard ONNX file that scores like scikit-learn to about 1e-15.

It is skl2onnx's float64 (`DoubleTensorType`) conversion with the two parts that lose precision
converted by edgewise instead (`converters.py`): SimpleImputer (`imputer.py`) and the tree
model (`tree_model.py`, `tree_ensemble.py`). `support.py` decides which pipelines qualify;
the research behind each step is in docs/design/native-engine.md.
"""

from __future__ import annotations

from typing import Any

import onnx

from ..convert import Layout, final_estimator, skl2onnx_options
from .converters import exact_converters
from .support import ExactGraphUnsupported, check_supported
from .tree_model import replace_tree_model

__all__ = ["ExactGraphUnsupported", "to_exact_onnx"]


def to_exact_onnx(pipeline: Any, layout: Layout) -> bytes:
    """The exact float64 graph of `pipeline`; numeric inputs in `layout` are float64.

    Raises `ExactGraphUnsupported` naming the step it cannot reproduce exactly.
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    check_supported(pipeline)
    initial_types = [
        (
            name,
            StringTensorType([None, 1]) if kind == "string" else DoubleTensorType([None, len(c)]),
        )
        for name, kind, c in layout
    ]
    with exact_converters():
        try:
            model = convert_sklearn(
                pipeline, initial_types=initial_types, options=skl2onnx_options(pipeline)
            )
        except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
            raise ExactGraphUnsupported(
                f"skl2onnx cannot convert it with float64 inputs: {exc}"
            ) from exc
    replace_tree_model(model, final_estimator(pipeline))
    _declare_float64_scores(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExactGraphUnsupported(f"the exact graph fails the ONNX checker: {exc}") from exc
    return bytes(model.SerializeToString())


def _declare_float64_scores(model: onnx.ModelProto) -> None:
    """Every score the graph computes is float64, but skl2onnx declares some outputs float32:
    a ColumnTransformer's output takes the type of its first part (float32 after a
    OneHotEncoder, cast to float64 before the estimator), and tree operators only have float
    outputs. The intermediate types it recorded go too; ONNX infers them again."""
    for output in model.graph.output:
        if output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            output.type.tensor_type.elem_type = onnx.TensorProto.DOUBLE
    del model.graph.value_info[:]
