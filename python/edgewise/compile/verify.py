"""How closely a converted model reproduces the fitted pipeline, measured on sample rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..model import Model, Outputs

#: Thresholds for the share of rows that moved, as promised in the manifest.
TOLERANCES = (1e-5, 1e-3)


@dataclass(frozen=True)
class Fidelity:
    """Largest difference and share of rows beyond each tolerance, over the score columns."""

    engine: str
    rows: int
    max_abs_diff: float
    share_over_1e_5: float
    share_over_1e_3: float
    label_agreement: float | None  # classification: share of rows with the same label

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        text = (
            f"{self.engine}: max |diff| {self.max_abs_diff:.3g} over {self.rows} rows; "
            f"{self.share_over_1e_5:.2%} of rows differ by > 1e-5, "
            f"{self.share_over_1e_3:.2%} by > 1e-3"
        )
        if self.label_agreement is not None:
            text += f"; labels agree on {self.label_agreement:.2%}"
        return text


def as_float64(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with its numeric columns as float64, the input contract of the bundle.

    The graph computes in float64 whatever the column type; scikit-learn keeps float32 columns
    in float32 through imputers and scalers, so the reference scores need float64 columns too.
    """
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    return frame.astype(dict.fromkeys(numeric, np.float64))


def expected_scores(pipeline: Any, frame: pd.DataFrame, outputs: Outputs) -> np.ndarray:
    """The fitted pipeline's own scores on float64 columns: probabilities (n, classes) or
    predictions (n, 1)."""
    if outputs.task == "classification":
        return np.asarray(pipeline.predict_proba(as_float64(frame)), dtype=np.float64)
    return np.asarray(pipeline.predict(as_float64(frame)), dtype=np.float64).reshape(-1, 1)


def expected_labels(pipeline: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(pipeline.predict(as_float64(frame)))


def measure_model(
    model: Model,
    frame: pd.DataFrame,
    expected: np.ndarray,
    labels: np.ndarray | None = None,
) -> Fidelity:
    """Score `frame` (rows the model accepts) with `model` and compare with the expected scores
    and, for classifiers, labels."""
    scored = pa.table(model.predict(pa.Table.from_pandas(frame, preserve_index=False)))
    score_columns = [c for c in model.outputs.columns if c != "label"]
    actual = np.column_stack([scored[c].to_numpy() for c in score_columns])
    actual_labels = None
    if labels is not None:
        actual_labels = scored["label"].to_numpy(zero_copy_only=False)
    return measure(model.engine.name, expected, actual, labels, actual_labels)


def measure(
    engine: str,
    expected: np.ndarray,
    actual: np.ndarray,
    expected_labels: np.ndarray | None = None,
    actual_labels: np.ndarray | None = None,
) -> Fidelity:
    """Compare two (n, k) score matrices row by row."""
    rows = expected.shape[0]
    per_row = np.abs(expected - actual).max(axis=1) if rows else np.zeros(0)
    agreement = None
    if expected_labels is not None and actual_labels is not None and rows:
        agreement = float(np.mean(expected_labels == actual_labels))
    return Fidelity(
        engine=engine,
        rows=rows,
        max_abs_diff=float(per_row.max()) if rows else 0.0,
        share_over_1e_5=float(np.mean(per_row > TOLERANCES[0])) if rows else 0.0,
        share_over_1e_3=float(np.mean(per_row > TOLERANCES[1])) if rows else 0.0,
        label_agreement=agreement,
    )
