"""`edgewise.score`: outputs, quarantine, strict mode, bad input and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import edgewise
from edgewise import DataError, DataFileError, SchemaError, ScoreRunError
from edgewise.cli import main
from edgewise.cli.score import SCORE_ENVIRONMENT
from edgewise.datasets import FEATURES, credit_frame, write_credit_parquet
from edgewise.scoring import WriteBehind, plan_parts, resolve_inputs


def read_scores(out: Path) -> pd.DataFrame:
    parts = sorted(out.glob("part-*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in parts], ignore_index=True)


def write_frame(path: Path, frame: pd.DataFrame, row_group_size: int = 500) -> Path:
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


def test_scores_match_scikit_learn_and_keep_columns(tmp_path, bundle_path, credit_model):
    frame = credit_frame(2000, seed=5)
    source = write_frame(tmp_path / "in.parquet", frame)
    summary = edgewise.score(bundle_path, source, tmp_path / "out", keep=["applicant_id"])
    assert (summary.rows_read, summary.rows_scored, summary.rows_quarantined) == (2000, 2000, 0)
    scores = read_scores(tmp_path / "out")
    assert list(scores.columns) == [
        "applicant_id",
        "label",
        "proba_0",
        "proba_1",
        "model_name",
        "model_version",
    ]
    assert scores["applicant_id"].tolist() == frame["applicant_id"].tolist()
    expected = credit_model.predict_proba(frame[FEATURES])[:, 1]
    np.testing.assert_allclose(scores["proba_1"], expected, atol=1e-5)
    assert (scores["label"] == credit_model.predict(frame[FEATURES])).mean() > 0.999
    assert set(scores["model_name"]) == {"credit"} and set(scores["model_version"]) == {3}
    recorded = json.loads((tmp_path / "out" / "_edgewise_summary.json").read_text())
    assert recorded["rows_scored"] == 2000


def test_inputs_from_directories_and_globs_in_order(tmp_path, bundle_path):
    paths = write_credit_parquet(tmp_path / "data", 3000, files=3, row_group_rows=400)
    assert resolve_inputs([tmp_path / "data"]) == paths
    assert resolve_inputs([str(tmp_path / "data" / "part-00[12].parquet")]) == paths[1:]
    summary = edgewise.score(
        bundle_path,
        [str(tmp_path / "data" / "*.parquet")],
        tmp_path / "out",
        keep=["applicant_id"],
        batch_rows=700,
        part_rows=1200,
    )
    assert summary.files == 3 and summary.rows_scored == 3000
    ids = read_scores(tmp_path / "out")["applicant_id"].tolist()
    expected = pd.concat([pq.read_table(p).to_pandas() for p in paths])["applicant_id"].tolist()
    assert ids == expected


def test_rows_the_model_cannot_take_go_to_quarantine(tmp_path, bundle_path):
    frame = credit_frame(1000, seed=6)
    frame.loc[[3, 700], "region"] = None  # the encoder cannot take a null category
    source = write_frame(tmp_path / "in.parquet", frame)
    summary = edgewise.score(bundle_path, source, tmp_path / "out", keep=["applicant_id"])
    assert (summary.rows_scored, summary.rows_quarantined) == (998, 2)
    quarantine = pq.read_table(tmp_path / "out" / "quarantine" / "part-00000-00000.parquet")
    rejected = quarantine.to_pandas()
    assert rejected["_source_row"].tolist() == [3, 700]
    assert rejected["_reason"].tolist() == ["column 'region' is null"] * 2
    assert rejected["_source_file"].tolist() == [str(source)] * 2
    assert rejected["applicant_id"].tolist() == frame["applicant_id"].iloc[[3, 700]].tolist()
    assert 3 not in set(read_scores(tmp_path / "out")["applicant_id"] - frame["applicant_id"][0])


def test_strict_mode_stops_at_the_first_bad_row(tmp_path, bundle_path):
    frame = credit_frame(1000, seed=6)
    frame.loc[612, "channel"] = None
    source = write_frame(tmp_path / "in.parquet", frame)
    with pytest.raises(DataError, match=r"in\.parquet: row 612: column 'channel' is null"):
        edgewise.score(bundle_path, source, tmp_path / "out", strict=True)
    assert not list((tmp_path / "out").glob("part-*.parquet"))


def test_missing_column_is_named_with_its_file(tmp_path, bundle_path):
    source = write_frame(tmp_path / "in.parquet", credit_frame(100).drop(columns=["income"]))
    with pytest.raises(SchemaError, match=r"in\.parquet: column 'income': missing"):
        edgewise.score(bundle_path, source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_column_type_is_named(tmp_path, bundle_path):
    frame = credit_frame(100)
    frame["age"] = frame["age"].astype(str)
    source = write_frame(tmp_path / "in.parquet", frame)
    with pytest.raises(
        SchemaError, match=r"column 'age': the model needs a numeric column, found string"
    ):
        edgewise.score(bundle_path, source, tmp_path / "out")


def test_truncated_file_is_a_data_file_error(tmp_path, bundle_path):
    source = write_frame(tmp_path / "in.parquet", credit_frame(100))
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError, match=r"in\.parquet: not a readable Parquet file"):
        edgewise.score(bundle_path, source, tmp_path / "out")


def test_missing_input_is_a_data_file_error(tmp_path, bundle_path):
    with pytest.raises(DataFileError, match=r"nope\.parquet: no such file"):
        edgewise.score(bundle_path, tmp_path / "nope.parquet", tmp_path / "out")


def test_an_existing_run_is_not_overwritten(tmp_path, bundle_path):
    source = write_frame(tmp_path / "in.parquet", credit_frame(100))
    edgewise.score(bundle_path, source, tmp_path / "out")
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.parquet")}
    with pytest.raises(ScoreRunError, match="already holds a scoring run"):
        edgewise.score(bundle_path, source, tmp_path / "out")
    assert {p: p.read_bytes() for p in (tmp_path / "out").rglob("*.parquet")} == before
    with pytest.raises(ScoreRunError, match="different keep"):
        edgewise.score(bundle_path, source, tmp_path / "out", keep=["applicant_id"], resume=True)


def test_output_that_is_a_file_is_refused(tmp_path, bundle_path):
    source = write_frame(tmp_path / "in.parquet", credit_frame(10))
    (tmp_path / "out").write_text("precious")
    with pytest.raises(ScoreRunError, match="out: exists and is not a directory"):
        edgewise.score(bundle_path, source, tmp_path / "out")
    assert (tmp_path / "out").read_text() == "precious"


def test_empty_file_gives_an_empty_part(tmp_path, bundle_path):
    source = write_frame(tmp_path / "in.parquet", credit_frame(0))
    summary = edgewise.score(bundle_path, source, tmp_path / "out", keep=["applicant_id"])
    assert summary.rows_read == 0
    table = pq.read_table(tmp_path / "out" / "part-00000-00000.parquet")
    assert table.num_rows == 0 and "proba_1" in table.column_names


class _FakeFile:
    def __init__(self, rows: list[int]) -> None:
        self.row_group_rows = rows


@pytest.mark.parametrize(
    ("rows", "batch_rows", "part_rows"),
    [([100] * 10, 250, 450), ([1000], 10, 10), ([], 5, 5), ([5, 500, 5, 5], 100, 501)],
)
def test_plan_covers_every_row_group_once_in_order(rows, batch_rows, part_rows):
    parts = plan_parts([_FakeFile(rows)], batch_rows, part_rows)  # type: ignore[list-item]
    flat = [rg for part in parts for batch in part.row_groups for rg in batch]
    assert flat == list(range(len(rows)))
    assert sum(p.rows for p in parts) == sum(rows)
    starts = [p.first_row for p in parts]
    assert starts == sorted(starts) and starts[0] == 0
    assert [p.chunk for p in parts] == list(range(len(parts)))


SCORER = """
import os, signal, sys, edgewise, edgewise.scoring as scoring

# SIGKILL this process as it starts its KILL_AT-th batch write: a crash at a known point
# instead of a race between the test's polling and the scorer's speed.
KILL_AT, writes, Writer = int(sys.argv[4]), 0, scoring.ParquetWriter

class DyingWriter:
    def __init__(self, *args):
        self.writer = Writer(*args)

    def write(self, batch):
        global writes
        writes += 1
        if writes == KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
        self.writer.write(batch)

    def close(self):
        self.writer.close()

scoring.ParquetWriter = DyingWriter
edgewise.score(sys.argv[1], sys.argv[2], sys.argv[3], keep=["applicant_id"],
               batch_rows=2000, part_rows=4000, resume=True)
"""


def test_resume_after_kill_gives_the_uninterrupted_output(tmp_path, bundle_path):
    # 16 parts of 4,000 rows, each written as two batches of 2,000.
    write_credit_parquet(tmp_path / "data", 64_000, files=2, row_group_rows=1000)
    reference = tmp_path / "reference"
    edgewise.score(
        bundle_path,
        tmp_path / "data",
        reference,
        keep=["applicant_id"],
        batch_rows=2000,
        part_rows=4000,
    )
    out = tmp_path / "out"
    args = [sys.executable, "-c", SCORER, str(bundle_path), str(tmp_path / "data"), str(out)]

    def finished() -> list[Path]:
        return sorted(out.glob("part-*.parquet"))

    done = 0
    # Each run resumes and is killed at the second batch of its (new + 1)-th part: after its
    # first `new` parts were published, in the middle of writing the next one.
    for new in (0, 1, 3, 5):
        killed = subprocess.run([*args, str(2 * new + 2)], timeout=120)
        assert killed.returncode == -signal.SIGKILL
        done += new
        assert len(finished()) == done
        assert list((out / ".tmp").glob("*.parquet")), "a part was being written"
        for path in finished():  # every file under a final name is a whole Parquet file
            pq.read_table(path)
    subprocess.run([*args, "0"], check=True, timeout=120)
    assert sorted(os.listdir(out)) == sorted(os.listdir(reference))
    pd.testing.assert_frame_equal(read_scores(out), read_scores(reference))
    summary = json.loads((out / "_edgewise_summary.json").read_text())
    assert summary["parts_resumed"] == done == 9 and summary["rows_read"] == 64_000


def test_sources_that_match_no_parquet_file(tmp_path, bundle_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match=r"empty: no Parquet files found"):
        edgewise.score(bundle_path, tmp_path / "empty", tmp_path / "out")
    with pytest.raises(DataFileError, match=r"\*\.parquet: no Parquet files found"):
        edgewise.score(bundle_path, str(tmp_path / "empty" / "*.parquet"), tmp_path / "out")


def test_keep_column_may_not_shadow_a_score_column(tmp_path, bundle_path):
    frame = credit_frame(10)
    frame["label"] = 1
    source = write_frame(tmp_path / "in.parquet", frame)
    with pytest.raises(SchemaError, match="--keep: column 'label': clashes with an output column"):
        edgewise.score(bundle_path, source, tmp_path / "out", keep=["label"])


def test_profile_of_the_scored_data_and_drift_from_the_training_data(tmp_path, bundle_path):
    frame = credit_frame(6000, seed=11)
    source = write_frame(tmp_path / "in.parquet", frame)
    summary = edgewise.score(bundle_path, source, tmp_path / "same", profile=True, part_rows=2000)
    assert summary.parts == 3 and summary.drifted_columns == []
    scored = edgewise.Profile.from_bytes(
        (tmp_path / "same" / "_edgewise_profile.ewprofile").read_bytes()
    )
    assert scored.rows == 6000 and set(scored.column_names) == set(FEATURES)
    whole = {c["name"]: c for c in edgewise.profile(source, columns=FEATURES).summary()}
    for column in scored.summary():
        for key in ("nulls", "min", "max", "top"):
            assert column.get(key) == whole[column["name"]].get(key), (column["name"], key)

    moved = frame.assign(income=frame["income"] * 1.6)
    shifted = write_frame(tmp_path / "moved.parquet", moved)
    result = CliRunner().invoke(
        main,
        [
            "score",
            str(bundle_path),
            str(shifted),
            "-o",
            str(tmp_path / "moved"),
            "--profile",
            "--insecure-unsigned",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning: the scored data drifted from the training data in 1 column(s): income" in (
        result.output
    )
    report = CliRunner().invoke(
        main, ["drift", str(bundle_path), str(tmp_path / "moved" / "_edgewise_profile.ewprofile")]
    )
    assert "DRIFT income" in " ".join(report.output.split())


def test_a_failed_write_keeps_the_later_tasks_from_running():
    """A part's publication queued behind a failing write never runs: no half part is renamed."""
    ran: list[str] = []

    def failing() -> None:
        raise OSError("disk full")

    with WriteBehind(depth=3) as writes:
        writes.submit(lambda: ran.append("first write"))
        writes.submit(failing)
        writes.submit(lambda: ran.append("publish"))
        with pytest.raises(OSError, match="disk full"):
            writes.drain()
    assert ran == ["first write"]


def test_tasks_submitted_before_an_error_elsewhere_still_run():
    """A part scored before the main thread fails (say, --strict) is still published."""
    ran: list[str] = []
    with pytest.raises(DataError), WriteBehind() as writes:
        writes.submit(lambda: (time.sleep(0.05), ran.append("write")))
        writes.submit(lambda: ran.append("publish"))
        raise DataError("row 7: cannot be scored")
    assert ran == ["write", "publish"]


def test_strict_failure_in_a_later_part_keeps_the_earlier_parts(tmp_path, bundle_path):
    frame = credit_frame(2000, seed=9)
    frame.loc[1500, "channel"] = None
    source = write_frame(tmp_path / "in.parquet", frame)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="row 1500"):
        edgewise.score(bundle_path, source, out, strict=True, batch_rows=500, part_rows=1000)
    assert [p.name for p in sorted(out.glob("part-*.parquet"))] == ["part-00000-00000.parquet"]
    assert pq.read_table(out / "part-00000-00000.parquet").num_rows == 1000


SCORE_THEN_REPORT_ENVIRONMENT = """
import ctypes
import os
import sys
from click.testing import CliRunner
from threadpoolctl import threadpool_info
from edgewise.cli import main

# The settings only take effect if numpy and the core are first loaded after they are made.
assert "numpy" not in sys.modules and "edgewise._core" not in sys.modules
result = CliRunner().invoke(main, sys.argv[1:])
assert result.exit_code == 0, result.output
blas = [pool["num_threads"] for pool in threadpool_info() if pool["internal_api"] == "openblas"]
PR_GET_THP_DISABLE = 42
thp_disabled = ctypes.CDLL(None, use_errno=True).prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0)
print(max(blas, default=1), os.environ["MIMALLOC_PURGE_DELAY"], thp_disabled)
"""


def test_score_runs_with_its_environment(tmp_path, bundle_path):
    """`edgewise score` keeps OpenBLAS to one thread, mimalloc's freed memory for reuse, and
    its process off transparent huge pages."""
    source = write_frame(tmp_path / "in.parquet", credit_frame(100, seed=2))
    env = {k: v for k, v in os.environ.items() if k not in SCORE_ENVIRONMENT}
    args = [str(bundle_path), str(source), "-o", str(tmp_path / "out"), "--insecure-unsigned"]
    result = subprocess.run(
        [sys.executable, "-c", SCORE_THEN_REPORT_ENVIRONMENT, "score", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split()[-3:] == ["1", "-1", "1"]
