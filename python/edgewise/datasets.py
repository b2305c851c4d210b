"""A synthetic credit-risk dataset and pipelines for the demo, the tests and the benchmarks.

The data looks like what lenders score: skewed amounts, counts, bounded ratios, categorical
columns with uneven frequencies, and missing values where real systems have them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC = [
    "age",
    "income",
    "balance",
    "utilization",
    "tenure_months",
    "transactions_30d",
    "days_since_last_payment",
    "credit_score",
    "debt_ratio",
    "late_payments",
]
CATEGORICAL = ["region", "product", "channel", "employment", "device"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "defaulted"

_CATEGORIES = {
    "region": (
        ["north", "south", "east", "west", "central", "coast", "mountain", "islands"],
        [0.24, 0.2, 0.16, 0.14, 0.12, 0.07, 0.05, 0.02],
    ),
    "product": (["card", "loan", "mortgage", "overdraft", "bnpl"], [0.4, 0.25, 0.15, 0.12, 0.08]),
    "channel": (["web", "app", "branch", "partner"], [0.35, 0.4, 0.15, 0.1]),
    "employment": (
        ["employed", "self_employed", "student", "retired", "unemployed"],
        [0.6, 0.15, 0.08, 0.12, 0.05],
    ),
    "device": (["ios", "android", "desktop"], [0.4, 0.4, 0.2]),
}
_MISSING = {"income": 0.05, "credit_score": 0.03, "days_since_last_payment": 0.02}


def credit_frame(
    rows: int, seed: int = 0, shift: float = 0.0, broken_share: float = 0.0
) -> pd.DataFrame:
    """`rows` synthetic applicants; `shift` moves income and utilization (simulated drift);
    `broken_share` of the rows lose their `channel`, as when an upstream system drops a field."""
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {"applicant_id": np.arange(rows, dtype=np.int64) + seed * 10**10}
    data["age"] = np.clip(rng.normal(41, 12, rows), 18, 90).round()
    data["income"] = rng.lognormal(10.6 + shift, 0.55, rows).round(2)
    data["balance"] = rng.lognormal(7.5, 1.3, rows).round(2)
    data["utilization"] = np.clip(rng.beta(2, 5, rows) + shift / 4, 0, 1.5)
    data["tenure_months"] = rng.gamma(2.0, 18.0, rows).round()
    data["transactions_30d"] = rng.poisson(22, rows).astype(np.float64)
    data["days_since_last_payment"] = rng.exponential(12, rows).round()
    data["credit_score"] = np.clip(rng.normal(660, 75, rows), 300, 850).round()
    data["debt_ratio"] = rng.beta(2.2, 4, rows) * 1.6
    data["late_payments"] = rng.poisson(0.4, rows).astype(np.float64)
    for name, (values, weights) in _CATEGORIES.items():
        data[name] = np.asarray(values, dtype=object)[rng.choice(len(values), rows, p=weights)]
    logit = (
        -2.2
        + 2.8 * (data["utilization"] - 0.3)
        + 1.4 * (data["debt_ratio"] - 0.55)
        + 0.55 * data["late_payments"]
        - 0.012 * (data["credit_score"] - 660)
        - 0.35 * (np.log(data["income"]) - 10.6)
        + 0.6 * (data["employment"] == "unemployed")
        + 0.3 * (data["product"] == "bnpl")
    )
    data[TARGET] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    for name, share in _MISSING.items():
        data[name] = np.where(rng.random(rows) < share, np.nan, data[name])
    if broken_share:
        data["channel"] = np.where(rng.random(rows) < broken_share, None, data["channel"])
    return pd.DataFrame(data)


def write_credit_parquet(
    directory: Path,
    rows: int,
    files: int = 4,
    *,
    seed: int = 1,
    shift: float = 0.0,
    broken_share: float = 0.0,
    row_group_rows: int = 128 * 1024,
    chunk_rows: int = 1 << 20,
) -> list[Path]:
    """Write `rows` rows as `files` Parquet files, generated in chunks to bound memory."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    per_file = -(-rows // files)
    for index in range(files):
        path = directory / f"part-{index:03d}.parquet"
        file_rows = min(per_file, rows - index * per_file)
        writer: pq.ParquetWriter | None = None
        written = 0
        while written < max(file_rows, 0):
            count = min(chunk_rows, file_rows - written)
            chunk_seed = seed * 1000 + index * 100 + written // chunk_rows
            frame = credit_frame(count, chunk_seed, shift, broken_share)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table, row_group_size=row_group_rows)
            written += count
        if writer is not None:
            writer.close()
            paths.append(path)
    return paths


def credit_pipeline(model: str, **params: Any) -> Any:
    """Impute and scale the numeric columns, one-hot encode the categorical ones, then `model`:
    logistic, hist_gradient_boosting, random_forest."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    estimators: dict[str, tuple[Any, dict[str, Any]]] = {
        "logistic": (LogisticRegression, {"max_iter": 500}),
        "hist_gradient_boosting": (
            HistGradientBoostingClassifier,
            # All 200 iterations, as the benchmarks promise: early stopping would cut the
            # model to however many trees the validation split asks for.
            {"max_iter": 200, "early_stopping": False, "random_state": 0},
        ),
        "random_forest": (
            RandomForestClassifier,
            {"n_estimators": 100, "max_depth": 12, "n_jobs": -1, "random_state": 0},
        ),
    }
    if model not in estimators:
        raise ValueError(f"unknown model {model!r}: choose one of {', '.join(estimators)}")
    estimator, defaults = estimators[model]
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator(**{**defaults, **params}))])
