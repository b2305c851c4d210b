"""Quality metrics recorded in the manifest when the training data carries labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

from ..exceptions import SchemaError
from ..model import Outputs

#: Metrics are computed on at most this many rows, drawn reproducibly.
MAX_ROWS = 100_000


def evaluate(
    pipeline: Any, data: pd.DataFrame, features: list[str], target: str, outputs: Outputs
) -> dict[str, Any]:
    if target not in data.columns:
        raise SchemaError(f"training data: column '{target}': missing (named by --target)")
    rows = data.sample(n=min(len(data), MAX_ROWS), random_state=1)
    rows = rows[rows[target].notna()]
    truth = rows[target].to_numpy()
    result: dict[str, Any] = {"rows": len(rows), "data": "training data (optimistic)"}
    if outputs.task == "classification":
        probabilities = pipeline.predict_proba(rows[features])
        result["accuracy"] = float(metrics.accuracy_score(truth, pipeline.predict(rows[features])))
        result["log_loss"] = float(metrics.log_loss(truth, probabilities, labels=outputs.classes))
        if len(outputs.classes or []) == 2:
            result["roc_auc"] = float(metrics.roc_auc_score(truth, probabilities[:, 1]))
    else:
        predicted = pipeline.predict(rows[features])
        result["r2"] = float(metrics.r2_score(truth, predicted))
        result["rmse"] = float(np.sqrt(metrics.mean_squared_error(truth, predicted)))
        result["mae"] = float(metrics.mean_absolute_error(truth, predicted))
    return result
