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


# --- drift: a reference and a current dataset with a few real, modest shifts ------------------

_DRIFT_START = np.datetime64("2026-03-02T00:00:00", "us")
_DRIFT_WINDOW_US = 7 * 24 * 3600 * 10**6  # event_time spans one week, the same week on both sides
_REGIONS = (["north", "south", "east", "west", "central"], [0.4, 0.25, 0.17, 0.11, 0.07])
_MERCHANT_WEIGHTS = 1.0 / np.arange(1, 31) ** 1.1  # Zipf-like: a few big merchants, a long tail
_MERCHANTS = ([f"m{i:02d}" for i in range(30)], _MERCHANT_WEIGHTS / _MERCHANT_WEIGHTS.sum())
_PAYMENT_METHODS = ["card", "wallet", "bank_transfer", "bnpl", "voucher", "crypto"]
_PAYMENT_SHARES = np.array([0.45, 0.20, 0.15, 0.10, 0.06, 0.04])
# In the current data the wallet share grows from 20% to 28%; the others shrink in proportion.
_PAYMENT_SHARES_CURRENT = np.concatenate([[0.45 * 0.9], [0.28], _PAYMENT_SHARES[2:] * 0.9])

DRIFT_SHIFTS = {
    "basket_value": "mean shift: normal, mean 50 -> 53 (+0.25 sd), sd 12",
    "delivery_hours": "variance shift: normal, mean 48, sd 10 -> 13 (x1.3)",
    "payment_method": "category mix: 'wallet' share 20% -> 28%, the other five shrink by 10%",
    "chargebacks": "rare count: Poisson rate 0.05 -> 0.09",
    "session_seconds": "tail shift: lognormal, same median (e^4), log-sd 1.0 -> 1.15 (p99 x1.42)",
}


def _categorical(rng: np.random.Generator, rows: int, values: list[str], shares: Any) -> np.ndarray:
    """`rows` draws of `values` with the given shares, as an object array of str."""
    return np.asarray(values, dtype=object)[rng.choice(len(values), rows, p=shares)]


def _drift_frame(rng: np.random.Generator, rows: int, current: bool) -> pd.DataFrame:
    """One side of `drift_frames`: the shifted columns take their current parameters when
    `current` is true; every other column has the same distribution on both sides."""
    data: dict[str, Any] = {}
    # Unchanged on both sides.
    amount = rng.lognormal(3.5, 0.9, rows).round(2)
    data["amount"] = np.where(rng.random(rows) < 0.02, np.nan, amount)
    data["credit_score"] = rng.normal(660.0, 75.0, rows)
    data["discount_rate"] = rng.beta(2.0, 8.0, rows)
    data["items"] = rng.poisson(6.0, rows)
    data["returns"] = rng.poisson(0.3, rows)
    data["load_factor"] = rng.uniform(0.0, 1.0, rows)
    data["is_mobile"] = rng.random(rows) < 0.35
    data["region"] = _categorical(rng, rows, *_REGIONS)
    data["merchant"] = _categorical(rng, rows, *_MERCHANTS)
    offsets = rng.integers(0, _DRIFT_WINDOW_US, rows).astype("timedelta64[us]")
    data["event_time"] = np.sort(_DRIFT_START + offsets)
    # Shifted in the current data (see DRIFT_SHIFTS).
    data["basket_value"] = rng.normal(53.0 if current else 50.0, 12.0, rows)
    data["delivery_hours"] = rng.normal(48.0, 13.0 if current else 10.0, rows)
    shares = _PAYMENT_SHARES_CURRENT if current else _PAYMENT_SHARES
    data["payment_method"] = _categorical(rng, rows, _PAYMENT_METHODS, shares)
    data["chargebacks"] = rng.poisson(0.09 if current else 0.05, rows)
    data["session_seconds"] = rng.lognormal(4.0, 1.15 if current else 1.0, rows).round(3)
    return pd.DataFrame(data)


def drift_frames(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """A reference and a current dataset of `rows` rows each, and the columns that truly shift.

    Returns `(reference, current, shifts)`, where `shifts` maps each shifted column to a
    description of its shift. The two frames have the same 15 columns. The ten that do not
    shift are independent draws (separate random streams for the two sides) from the same
    distribution, so whatever a drift check reports on them is a false alarm:

    * `amount`: lognormal (log-mean 3.5, log-sd 0.9), rounded to cents, 2% missing (NaN);
    * `credit_score`: normal, mean 660, sd 75;
    * `discount_rate`: beta(2, 8), in [0, 1];
    * `items`: Poisson counts, rate 6 (int64);
    * `returns`: Poisson counts, small rate 0.3 (int64);
    * `load_factor`: uniform on [0, 1);
    * `is_mobile`: boolean flag, 35% true;
    * `region`: 5 categories (str) with shares 40/25/17/11/7%;
    * `merchant`: 30 categories `m00`..`m29` (str) with Zipf-like shares (29% down to 0.7%);
    * `event_time`: timestamps (datetime64[us]) uniform over one week from 2026-03-02, sorted
      as a log would be; the same week on both sides.

    The five shifted columns move by amounts that matter in production and that a good monitor
    should catch at this size, but none is large:

    * `basket_value`: normal, sd 12, mean 50 -> 53 (a mean shift of +0.25 sd);
    * `delivery_hours`: normal, mean 48, sd 10 -> 13 (a variance shift, x1.3);
    * `payment_method`: 6 categories (str); `wallet` goes from 20% to 28% of rows and the other
      five shrink by 10% each (card 45 -> 40.5%, ...);
    * `chargebacks`: a rare count, Poisson rate 0.05 -> 0.09 (int64);
    * `session_seconds`: lognormal with the same median (e^4, about 55 s) and log-sd
      1.0 -> 1.15: the bulk barely moves, the upper tail grows (p99 about x1.42).

    Deterministic from `seed`; vectorized with numpy (about a second per million rows a side).
    """
    if rows < 0:
        raise ValueError(f"rows must be non-negative, got {rows}")
    reference_seed, current_seed = np.random.SeedSequence(seed).spawn(2)
    reference = _drift_frame(np.random.default_rng(reference_seed), rows, current=False)
    current = _drift_frame(np.random.default_rng(current_seed), rows, current=True)
    return reference, current, dict(DRIFT_SHIFTS)
