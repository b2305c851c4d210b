"""The batch half of `edgewise demo`: train, compile, sign, verify and score Parquet."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd
import pyarrow.parquet as pq

from ..compile import compile_pipeline, describe_source
from ..datasets import FEATURES, TARGET, credit_frame, credit_pipeline, write_credit_parquet
from ..model import Model
from ..scoring import QUARANTINE_DIR, ScoreSummary, score
from ..trust import DirectoryRepository, KeyRing, TrustClient, VerifiedBundle, init_keys

Say = Callable[[str], None]


@dataclass(frozen=True)
class BatchStory:
    summary: ScoreSummary
    bundle_path: Path  # version 1, published in workdir/repo
    train: pd.DataFrame


def run_batch_story(workdir: Path, *, rows: int, train_rows: int, say: Say) -> BatchStory:
    """Train, compile, sign, verify and score `rows` rows; narrate each step through `say`."""
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
    for fidelity in result.fidelity_by_engine.values():
        if fidelity is not None:
            say(f"   fidelity against scikit-learn: {fidelity.describe()}")

    verified = sign_and_verify(bundle_path, workdir, say)

    say(f"4. writing {rows:,} applicants to score as Parquet (4 files)")
    inputs = write_credit_parquet(
        workdir / "applicants", rows, files=4, seed=7, shift=0.1, broken_share=1e-4
    )
    say("   (about 1 in 10,000 rows lost its `channel` upstream; the model cannot score those)")

    say("5. scoring them with the verified bundle")
    model = Model.from_bundle(verified.bundle)
    summary = score(model, inputs, workdir / "scores", keep=["applicant_id"])
    say(
        f"   scored {summary.rows_scored:,} rows in {summary.seconds:.2f} s "
        f"({summary.rows_per_second:,.0f} rows/s on {summary.engine}); "
        f"{summary.rows_quarantined:,} quarantined"
    )
    say(f"   scores: {summary.output}/part-*.parquet")
    quarantined = sorted(Path(summary.output, QUARANTINE_DIR).glob("*.parquet"))
    if quarantined:
        first = pq.read_table(quarantined[0], columns=["_source_file", "_source_row", "_reason"])
        row = first.slice(0, 1).to_pylist()[0]
        say(
            f"   quarantine: {summary.output}/{QUARANTINE_DIR}/, e.g. "
            f"{Path(row['_source_file']).name} row {row['_source_row']}: {row['_reason']}"
        )
    return BatchStory(summary, bundle_path, train)


def sign_and_verify(bundle_path: Path, workdir: Path, say: Say) -> VerifiedBundle:
    """Keys, a repository holding the bundle, and a client that verifies it from a pinned root."""
    say("3. signing it: keys, a TUF repository, and verification from a pinned root")
    keys = init_keys(workdir / "keys")
    repository = DirectoryRepository(workdir / "repo", KeyRing([workdir / "keys"]))
    root = repository.init(operator_keys=[keys["operator"]])
    say(
        f"   {len(keys)} Ed25519 keys in {workdir / 'keys'}; root version {root.version} needs "
        f"{root.roles['root'].threshold} of {len(root.roles['root'].keyids)} root keys"
    )
    target = repository.add_bundle(bundle_path)
    say(f"   published {target.path} in {workdir / 'repo'}")
    client = TrustClient.for_directory(
        workdir / "repo", workdir / "repo" / "metadata" / "1.root.json", workdir / "trust-state"
    )
    verified = client.verify_file(bundle_path, name=target.name)
    signed_as, root_version = verified.target.describe(), verified.root_version
    say(f"   verified: signed as {signed_as} under root version {root_version}")
    return verified
