"""How closely a converted model reproduces the fitted pipeline, measured on sample rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..model import Outputs

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


def expected_scores(pipeline: Any, frame: pd.DataFrame, outputs: Outputs) -> np.ndarray:
    """The fitted pipeline's own scores: probabilities (n, classes) or predictions (n, 1)."""
    if outputs.task == "classification":
        return np.asarray(pipeline.predict_proba(frame), dtype=np.float64)
    return np.asarray(pipeline.predict(frame), dtype=np.float64).reshape(-1, 1)


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
