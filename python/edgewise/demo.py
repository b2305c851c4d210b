"""`edgewise demo`: the main story on one machine, with embedded defaults."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import joblib

from .compile import compile_pipeline, describe_source
from .datasets import FEATURES, TARGET, credit_frame, credit_pipeline, write_credit_parquet
from .model import Model
from .score import ScoreSummary, score

Say = Callable[[str], None]


def run_demo(workdir: Path, *, rows: int, train_rows: int, say: Say) -> ScoreSummary:
    """Train, compile, and score `rows` rows; narrate each step through `say`."""
    workdir.mkdir(parents=True, exist_ok=True)

    say(f"1. training a credit-risk pipeline on {train_rows:,} synthetic applicants")
    train = credit_frame(train_rows, seed=0)
    train_path = workdir / "train.parquet"
    train.to_parquet(train_path, index=False)
    pipeline = credit_pipeline("hist_gradient_boosting", max_iter=100)
    started = time.perf_counter()
    pipeline.fit(train[FEATURES], train[TARGET])
    pipeline_path = workdir / "credit.joblib"
    joblib.dump(pipeline, pipeline_path)
    say(
        f"   HistGradientBoosting behind impute/scale/one-hot, fitted in "
        f"{time.perf_counter() - started:.1f} s"
    )

    say("2. compiling it to a verified bundle")
    result = compile_pipeline(
        pipeline,
        train,
        name="credit-risk",
        version=1,
        target=TARGET,
        lineage={
            "training_data": {**describe_source(train_path), "rows": len(train)},
            "pipeline_file": describe_source(pipeline_path),
        },
    )
    bundle_path = result.bundle.write(workdir / "credit-risk-1.ewb")
    say(f"   {bundle_path.name}: {bundle_path.stat().st_size:,} bytes")
    say(f"   fidelity against scikit-learn: {result.fidelity.describe()}")

    say(f"3. writing {rows:,} applicants to score as Parquet (4 files)")
    inputs = write_credit_parquet(workdir / "applicants", rows, files=4, seed=7, shift=0.1)

    say("4. scoring them")
    model = Model.load(bundle_path)
    summary = score(model, inputs, workdir / "scores", keep=["applicant_id"])
    say(
        f"   scored {summary.rows_scored:,} rows in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s on {summary.engine}); "
        f"{summary.rows_quarantined:,} quarantined"
    )
    say(f"   scores: {summary.output}/part-*.parquet")
    return summary
