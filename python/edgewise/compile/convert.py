"""scikit-learn pipeline to ONNX with skl2onnx, and the input/output layout of the graph."""

from __future__ import annotations

from typing import Any

from sklearn.base import is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from ..exceptions import ModelError
from ..model import Outputs
from ..schema import InputSchema
from . import skl2onnx_fixes


def final_estimator(pipeline: Any) -> Any:
    return pipeline[-1] if isinstance(pipeline, Pipeline) else pipeline


def input_layout(pipeline: Any, schema: InputSchema) -> list[tuple[str, str, list[str]]]:
    """One [N, 1] input per column when a ColumnTransformer routes columns by name; otherwise
    one float [N, k] input "X" holding every feature in training order."""
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
            (c.name, "string" if c.kind == "string" else "float32", [c.name])
            for c in schema.columns
        ]
    strings = [c.name for c in schema.columns if c.kind == "string"]
    if strings:
        raise ModelError(
            f"string columns {strings} reach the estimator without an encoder; "
            "put them through a ColumnTransformer with an encoder"
        )
    return [("X", "float32", schema.names)]


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


def to_onnx(pipeline: Any, layout: list[tuple[str, str, list[str]]]) -> bytes:
    """Convert with skl2onnx: float32 inputs, plain probability arrays (no ZipMap)."""
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
    estimator = final_estimator(pipeline)
    options = {id(estimator): {"zipmap": False}} if is_classifier(estimator) else None
    try:
        onnx_model = convert_sklearn(pipeline, initial_types=initial_types, options=options)
    except Exception as exc:  # skl2onnx raises many unrelated types for unsupported models
        raise ModelError(f"skl2onnx cannot convert this pipeline: {exc}") from exc
    return bytes(onnx_model.SerializeToString())
