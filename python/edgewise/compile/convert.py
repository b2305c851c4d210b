"""scikit-learn pipeline to ONNX with skl2onnx, and the input/output layout of the graph.

`to_onnx` is the float32 conversion, used when the exact float64 graph (`exact/`) cannot be
built; both share the layout and options defined here.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..exceptions import ModelError
from ..model import Outputs
from ..schema import InputSchema
from . import skl2onnx_fixes

#: The graph's inputs: (tensor name, element type, columns that fill it).
Layout = list[tuple[str, str, list[str]]]


def final_estimator(pipeline: Any) -> Any:
    return pipeline[-1] if isinstance(pipeline, Pipeline) else pipeline


def input_layout(pipeline: Any, schema: InputSchema, numeric: str) -> Layout:
    """One [N, 1] input per column when a ColumnTransformer routes columns by name; otherwise
    one [N, k] input "X" holding every feature in training order. Numeric inputs have the
    element type `numeric` ("float64" for the exact graph, "float32" for `to_onnx`)."""
    first = pipeline[0] if isinstance(pipeline, Pipeline) else pipeline
    if isinstance(first, ColumnTransformer):
        for _, _, selection in first.transformers:
            names = [selection] if isinstance(selection, str) else list(selection)
            if selection not in ("drop", "passthrough") and not all(
                isinstance(n, str) for n in names
            ):
                raise ModelError(
                    "the ColumnTransformer selects columns by position; "
                    "select them by name so the bundle can map them to Parquet columns"
                )
        return [
            (c.name, "string" if c.kind == "string" else numeric, [c.name]) for c in schema.columns
        ]
    strings = [c.name for c in schema.columns if c.kind == "string"]
    if strings:
        raise ModelError(
            f"string columns {strings} reach the estimator without an encoder; "
            "put them through a ColumnTransformer with an encoder"
        )
    return [("X", numeric, schema.names)]


def outputs_of(pipeline: Any) -> Outputs:
    estimator = final_estimator(pipeline)
    if is_classifier(estimator):
        classes = [c.item() if hasattr(c, "item") else c for c in estimator.classes_]
        return Outputs(
            task="classification",
            classes=classes,
            label_output="label",
            probability_output="probabilities",
        )
    if is_regressor(estimator):
        return Outputs(task="regression", prediction_output="variable")
    raise ModelError(f"{type(estimator).__name__} is neither a classifier nor a regressor")


def skl2onnx_options(pipeline: Any) -> dict[int, dict[str, Any]] | None:
    """Classifiers output plain probability arrays, not ZipMap (about 5x slower)."""
    estimator = final_estimator(pipeline)
    return {id(estimator): {"zipmap": False}} if is_classifier(estimator) else None


def to_onnx(pipeline: Any, layout: Layout) -> bytes:
    """Convert with skl2onnx, numeric inputs as float32 (`input_layout(..., "float32")`)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    skl2onnx_fixes.apply()
    initial_types = [
        (
            name,
            StringTensorType([None, 1]) if kind == "string" else FloatTensorType([None, len(cols)]),
        )
        for name, kind, cols in layout
    ]
    try:
        onnx_model = convert_sklearn(
            pipeline, initial_types=initial_types, options=skl2onnx_options(pipeline)
        )
    except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
        raise ModelError(f"skl2onnx cannot convert this pipeline: {exc}") from exc
    return bytes(onnx_model.SerializeToString())
