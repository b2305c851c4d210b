"""Compile a fitted scikit-learn pipeline into a verified bundle."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._core import Batch, InputLayout
from ..bundle import Bundle
from ..environment import library_versions
from ..exceptions import DataFileError, ModelError, SchemaError
from ..profiles.profile import profile
from ..schema import InputSchema
from .choice import ENGINES, load_best_graph
from .convert import Layout, final_estimator, outputs_of
from .infer import infer_schema
from .metrics import evaluate
from .probe import probe_schema
from .verify import Fidelity, expected_labels, expected_scores, measure_model

__all__ = [
    "CompileResult",
    "compile_pipeline",
    "describe_source",
    "load_pipeline",
    "read_training_data",
]

_LIBRARIES = ("edgewise", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class CompileResult:
    bundle: Bundle
    fidelity: Fidelity  # of the engine that runs the bundle by default
    fidelity_by_engine: dict[str, Fidelity | None]  # None: the engine cannot run the graph


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_pipeline(path: str | os.PathLike[str]) -> Any:
    """Load a pickled / joblib-dumped estimator. Loading a pickle runs code: trust the file."""
    import joblib

    path = Path(path)
    try:
        pipeline = joblib.load(path)
    except FileNotFoundError as exc:
        raise ModelError(f"{path}: no such file") from exc
    except Exception as exc:  # a damaged pickle can fail with any exception type
        raise ModelError(
            f"{path}: not a joblib or pickle file ({type(exc).__name__}: {exc})"
        ) from exc
    if not callable(getattr(pipeline, "predict", None)):
        raise ModelError(f"{path}: holds a {type(pipeline).__name__}, not a fitted estimator")
    return pipeline


def read_training_data(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    try:
        return pq.read_table(path).to_pandas()
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: no such file") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataFileError(f"{path}: not a readable Parquet file ({exc})") from exc


def compile_pipeline(
    pipeline: Any,
    train: pd.DataFrame,
    *,
    name: str,
    version: int,
    target: str | None = None,
    max_diff: float | None = None,
    sample_rows: int = 5000,
    health_rows: int = 256,
    lineage: dict[str, Any] | None = None,
) -> CompileResult:
    """Convert `pipeline` to ONNX, verify it on `train` rows and package it as a bundle.

    The graph is the exact float64 one when every step has an exact form, else skl2onnx's
    float32 graph; the manifest records which, why, and each engine's fidelity.

    Raises `ModelError` when the model on its default engine differs from the pipeline by more
    than `max_diff` on any verified row.
    """
    features = getattr(pipeline, "feature_names_in_", None)
    if features is None:
        raise ModelError(
            "the pipeline does not record its input columns; fit it on a pandas DataFrame"
        )
    features = [str(f) for f in features]
    absent = [f for f in features if f not in train.columns]
    if absent:
        raise SchemaError(f"training data: column '{absent[0]}': missing (the model needs it)")

    sample = train.sample(n=min(len(train), sample_rows), random_state=0)
    schema = probe_schema(pipeline, infer_schema(train, features), sample[features])
    outputs = outputs_of(pipeline)
    loaded = load_best_graph(pipeline, schema, outputs, name=name, version=version)

    verified = _scorable_rows(sample[features], loaded.graph.inputs, schema)
    expected = expected_scores(pipeline, verified, outputs)
    labels = expected_labels(pipeline, verified) if outputs.task == "classification" else None
    measured = {
        engine: measure_model(model, verified, expected, labels)
        for engine, model in loaded.models.items()
    }
    fidelity = measured[loaded.default]
    if max_diff is not None and not fidelity.max_abs_diff <= max_diff:  # NaN fails too
        raise ModelError(
            f"the converted model differs from the pipeline by up to {fidelity.max_abs_diff:.3g}, "
            f"over --max-diff {max_diff:g} ({fidelity.describe()}); bundle not written"
        )

    health = _health_sample(verified.head(health_rows), expected[:health_rows], outputs.columns)
    manifest = {
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": outputs.task,
        "schema": schema.to_json(),
        "inputs": [{"name": n, "type": t, "columns": c} for n, t, c in loaded.graph.inputs],
        "outputs": outputs.to_json(),
        "engine": loaded.to_json(),
        "fidelity": {e: measured[e].to_json() if e in measured else None for e in ENGINES},
        "lineage": {
            **(lineage or {}),
            "estimator": type(final_estimator(pipeline)).__name__,
            "parameters": _parameters(final_estimator(pipeline)),
            "libraries": library_versions(_LIBRARIES),
            "metrics": evaluate(pipeline, train, features, target, outputs) if target else None,
        },
    }
    # The training data's profile: what drift is measured against wherever the model runs.
    reference = profile(pa.Table.from_pandas(train[features], preserve_index=False)).to_bytes()
    bundle = Bundle.create(manifest, loaded.graph.onnx_model, health, reference)
    return CompileResult(bundle, fidelity, {e: measured.get(e) for e in ENGINES})


def _scorable_rows(frame: pd.DataFrame, inputs: Layout, schema: InputSchema) -> pd.DataFrame:
    """The rows the bundle accepts (training rows can hold nulls the model refuses)."""
    layout = InputLayout(inputs, [c.rule() for c in schema.columns])
    batch = Batch.from_arrow(pa.Table.from_pandas(frame, preserve_index=False))
    accepted = np.ones(len(frame), dtype=bool)
    accepted[layout.check_rows(batch, "training data").rejected_rows] = False
    return frame[accepted]


def _health_sample(frame: pd.DataFrame, expected: np.ndarray, columns: list[str]) -> bytes:
    """Inputs with the pipeline's own scores, as Parquet, for post-install checks."""
    score_columns = [c for c in columns if c != "label"]
    health = frame.reset_index(drop=True).copy()
    for i, column in enumerate(score_columns):
        health[f"expected_{column}"] = expected[:, i]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(health, preserve_index=False), sink)
    return bytes(sink.getvalue().to_pybytes())


def _parameters(estimator: Any) -> dict[str, Any]:
    simple = (str, int, float, bool, type(None))
    return {
        key: value if isinstance(value, simple) else repr(value)
        for key, value in estimator.get_params(deep=False).items()
    }


def describe_source(path: Path) -> dict[str, Any]:
    """Lineage entry for an input file: where it was, its size and content hash."""
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)}
