"""Batch scoring of Parquet files: planned in parts, written atomically, resumable.

An output directory holds one run::

    _edgewise_run.json      what is being scored (model, inputs, options): resume checks it
    part-FFFFF-PPPPP.parquet  scores for part PPPPP of input file FFFFF
    quarantine/part-...     rows that could not be scored, with the reason
    profiles/part-...       with `profile=True`: the profile of each part's model inputs
    _edgewise_profile.ewprofile  those merged: the profile of everything scored
    _edgewise_summary.json  written last, when every part is done

A part is written under `.tmp/` and renamed into place only when complete (its quarantine
file and profile first), so a part's final name exists only for finished work: `resume` skips
those and
redoes the rest, which yields exactly the output of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ._core import Batch, ParquetFile, ParquetWriter, Profile, RowVerdicts
from .bundle import write_atomic
from .exceptions import DataError, DataFileError, SchemaError, ScoreRunError
from .model import Model, ScoredBatch
from .sources import resolve_inputs

RUN_FILE = "_edgewise_run.json"
SUMMARY_FILE = "_edgewise_summary.json"
QUARANTINE_DIR = "quarantine"
PROFILES_DIR = "profiles"
PROFILE_FILE = "_edgewise_profile.ewprofile"
TMP_DIR = ".tmp"
RUN_FORMAT_VERSION = 1
QUARANTINE_COLUMNS = ("_source_file", "_source_row", "_reason")

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScoreSummary:
    model: str
    version: int
    engine: str
    output: str
    files: int
    parts: int
    parts_resumed: int
    rows_read: int
    rows_scored: int
    rows_quarantined: int
    seconds: float
    #: With `profile=True` and a bundle with a reference profile: the columns that drifted.
    drifted_columns: list[str] | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_second": round(self.rows_per_second)}


@dataclass(frozen=True)
class Part:
    """Consecutive row groups of one input file, scored into one output file."""

    file_index: int
    chunk: int
    row_groups: tuple[tuple[int, ...], ...]  # batches of row groups, read one batch at a time
    first_row: int
    rows: int

    @property
    def name(self) -> str:
        return f"part-{self.file_index:05d}-{self.chunk:05d}.parquet"


def plan_parts(files: Sequence[ParquetFile], batch_rows: int, part_rows: int) -> list[Part]:
    """Split each file into parts of about `part_rows` rows, read in batches of `batch_rows`."""
    parts = []
    for file_index, file in enumerate(files):
        chunk, first_row, part_first = 0, 0, 0
        batches: list[tuple[int, ...]] = []
        current: list[int] = []
        current_rows = part_size = 0
        for row_group, rows in enumerate(file.row_group_rows):
            current.append(row_group)
            current_rows += rows
            part_size += rows
            first_row += rows
            if current_rows >= batch_rows:
                batches.append(tuple(current))
                current, current_rows = [], 0
            if part_size >= part_rows:
                if current:
                    batches.append(tuple(current))
                    current, current_rows = [], 0
                parts.append(Part(file_index, chunk, tuple(batches), part_first, part_size))
                chunk, batches, part_first, part_size = chunk + 1, [], first_row, 0
        if current:
            batches.append(tuple(current))
        if batches or chunk == 0:
            parts.append(Part(file_index, chunk, tuple(batches), part_first, part_size))
    return parts


class ScoreRun:
    """One scoring run into one output directory."""

    def __init__(
        self,
        model: Model,
        inputs: list[Path],
        out: Path,
        *,
        keep: Sequence[str],
        strict: bool,
        threads: int | None,
        batch_rows: int,
        part_rows: int,
        compression: str,
        profile: bool,
    ) -> None:
        self.model = model
        self.inputs = inputs
        self.out = out
        self.keep = list(dict.fromkeys(keep))
        self.strict = strict
        self.compression = compression
        self.profile = profile
        self.threads = threads
        self.constants: Batch | None = None
        self.files = [self._open(path, threads) for path in inputs]
        self.read_columns = list(dict.fromkeys([*model.layout.columns, *self.keep]))
        # Categorical inputs stay dictionary-encoded from Parquet to the model's input tensors.
        self.dictionary_columns = [
            c.name for c in model.schema.columns if c.kind == "string" and c.name not in self.keep
        ]
        self._check_columns()
        self.parts = plan_parts(self.files, batch_rows, part_rows)
        self.identity = {
            "format_version": RUN_FORMAT_VERSION,
            "model": {"name": model.name, "version": model.version, "sha256": model.sha256},
            "inputs": [_file_identity(path) for path in inputs],
            "keep": self.keep,
            "strict": strict,
            "batch_rows": batch_rows,
            "part_rows": part_rows,
            "compression": compression,
            "profile": profile,
        }

    @staticmethod
    def _open(path: Path, threads: int | None) -> ParquetFile:
        try:
            return ParquetFile(path, threads)
        except IsADirectoryError as exc:
            raise DataFileError(f"{path}: is a directory") from exc

    def _check_columns(self) -> None:
        """Fail before writing anything if a file lacks a column or has the wrong kind."""
        taken = set(self.model.output_columns) | {"model_name", "model_version"}
        clash = [k for k in self.keep if k in taken]
        if clash:
            raise SchemaError(f"--keep: column '{clash[0]}': clashes with an output column name")
        for path, file in zip(self.inputs, self.files, strict=True):
            # The schema alone (zero row groups) goes through the same checks as every batch.
            self.model.layout.check_rows(file.read([], self.read_columns), str(path))

    def prepare_directory(self, resume: bool) -> None:
        run_file = self.out / RUN_FILE
        if self.out.exists() and not self.out.is_dir():
            raise ScoreRunError(f"{self.out}: exists and is not a directory")
        if run_file.exists():
            recorded = json.loads(run_file.read_text())
            if not resume:
                raise ScoreRunError(
                    f"{self.out}: already holds a scoring run; pass --resume to finish it "
                    "or choose another output directory"
                )
            if recorded != self.identity:
                changed = sorted(k for k in self.identity if recorded.get(k) != self.identity[k])
                raise ScoreRunError(
                    f"{self.out}: holds a run with different {', '.join(changed)}; "
                    "it cannot be resumed with these arguments"
                )
        elif self.out.exists() and any(self.out.iterdir()):
            raise ScoreRunError(f"{self.out}: exists and is not empty")
        else:
            write_atomic(run_file, json.dumps(self.identity, indent=2).encode())
        shutil.rmtree(self.out / TMP_DIR, ignore_errors=True)
        (self.out / TMP_DIR).mkdir(parents=True)
        (self.out / QUARANTINE_DIR).mkdir(exist_ok=True)
        if self.profile:
            (self.out / PROFILES_DIR).mkdir(exist_ok=True)

    def execute(self, progress: Progress | None) -> ScoreSummary:
        started = time.perf_counter()
        total = sum(part.rows for part in self.parts)
        done = scored = quarantined = resumed = 0
        todo = []
        for part in self.parts:
            finished = self._finished_counts(part)
            if finished is None:
                todo.append(part)
                continue
            resumed += 1
            done += part.rows
            scored += finished[0]
            quarantined += finished[1]
        if progress:
            progress(done, total)
        with WriteBehind() as writes:
            for part, batches in self._read_ahead(todo):
                part_scored, part_quarantined = self._score_part(
                    part, batches, writes, progress, done, total
                )
                done += part.rows
                scored += part_scored
                quarantined += part_quarantined
            writes.drain()
        shutil.rmtree(self.out / TMP_DIR, ignore_errors=True)
        drifted = self._merge_profiles() if self.profile else None
        summary = ScoreSummary(
            model=self.model.name,
            version=self.model.version,
            engine=self.model.engine.name,
            output=str(self.out),
            files=len(self.files),
            parts=len(self.parts),
            parts_resumed=resumed,
            rows_read=done,
            rows_scored=scored,
            rows_quarantined=quarantined,
            seconds=time.perf_counter() - started,
            drifted_columns=drifted,
        )
        write_atomic(self.out / SUMMARY_FILE, json.dumps(summary.to_json(), indent=2).encode())
        return summary

    def _merge_profiles(self) -> list[str] | None:
        """Merge the parts' profiles into the run's; the columns that drifted from the model's
        reference profile, or None when the bundle has none."""
        merged: Profile | None = None
        for part in self.parts:
            part_profile = Profile.from_bytes((self.out / PROFILES_DIR / part.name).read_bytes())
            merged = part_profile if merged is None else merged.merge(part_profile)
        assert merged is not None  # every run has at least one part
        write_atomic(self.out / PROFILE_FILE, merged.to_bytes())
        if self.model.reference is None:
            return None
        # Only runs that profile need the drift report (and its HTML renderer): imported here
        # to keep `edgewise score` start-up short.
        from .profiles.drift import drift

        report = drift(self.model.reference, merged, columns=merged.column_names)
        return [column.name for column in report.drifted_columns]

    def _finished_counts(self, part: Part) -> tuple[int, int] | None:
        final = self.out / part.name
        if not final.exists():
            return None
        quarantine = self.out / QUARANTINE_DIR / part.name
        rejected = ParquetFile(quarantine).num_rows if quarantine.exists() else 0
        return ParquetFile(final).num_rows, rejected

    def _read_ahead(self, parts: list[Part]) -> Iterator[tuple[Part, Iterator[Batch]]]:
        """Each part with its batches, the next batch read on a helper thread meanwhile."""
        jobs = [(part, row_groups) for part in parts for row_groups in part.row_groups]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgewise-read") as pool:
            pending: list[Future[Batch]] = []
            position = 0

            def schedule() -> None:
                nonlocal position
                if position < len(jobs):
                    part, row_groups = jobs[position]
                    file = self.files[part.file_index]
                    pending.append(
                        pool.submit(
                            file.read, list(row_groups), self.read_columns, self.dictionary_columns
                        )
                    )
                    position += 1

            schedule()
            for part in parts:

                def batches(part: Part = part) -> Iterator[Batch]:
                    if not part.row_groups:  # an empty file still gets an (empty) output
                        yield self.files[part.file_index].read([], self.read_columns, [])
                    for _ in part.row_groups:
                        future = pending.pop(0)
                        schedule()
                        yield future.result()

                yield part, batches()

    def _score_part(
        self,
        part: Part,
        batches: Iterator[Batch],
        writes: WriteBehind,
        progress: Progress | None,
        done: int,
        total: int,
    ) -> tuple[int, int]:
        path = self.inputs[part.file_index]
        source = str(path)
        tmp_scores, tmp_quarantine = self._tmp_paths(part)
        scores = ParquetWriter(tmp_scores, self.compression, self.threads)
        quarantine: ParquetWriter | None = None
        scored = rejected_total = 0
        first_row = part.first_row
        part_profile: Profile | None = None
        inputs = [column.name for column in self.model.schema.columns]
        for batch in batches:
            if self.profile:
                seen = batch.select(inputs)
                part_profile = part_profile or Profile(seen, threads=self.threads)
                part_profile.update(seen)
            result = self.model.score(batch, source)
            verdicts = result.verdicts
            if verdicts.rejected_rows and self.strict:
                raise DataError(
                    f"{source}: row {first_row + verdicts.rejected_rows[0]}: "
                    f"{verdicts.reasons[0]} (--strict stops at the first row that cannot be scored)"
                )
            writes.submit(partial(scores.write, self._scored(batch, result)))
            scored += verdicts.accepted_rows
            if verdicts.accepted_rows < batch.num_rows:
                quarantine = quarantine or ParquetWriter(
                    tmp_quarantine, self.compression, self.threads
                )
                writes.submit(
                    partial(quarantine.write, self._rejected(batch, source, first_row, verdicts))
                )
                rejected_total += batch.num_rows - verdicts.accepted_rows
            first_row += batch.num_rows
            if progress:
                progress(done + first_row - part.first_row, total)
        # Publishing (footer, fsync, renames) follows the part's writes on the writer thread,
        # so the next part is read and scored meanwhile instead of waiting for the disk.
        writes.submit(partial(self._publish, part, scores, quarantine, part_profile))
        return scored, rejected_total

    def _publish(
        self,
        part: Part,
        scores: ParquetWriter,
        quarantine: ParquetWriter | None,
        part_profile: Profile | None,
    ) -> None:
        """Close a part's files and give them their final names, the scores last."""
        tmp_scores, tmp_quarantine = self._tmp_paths(part)
        scores.close()
        if quarantine is not None:
            quarantine.close()
            os.replace(tmp_quarantine, self.out / QUARANTINE_DIR / part.name)
        if part_profile is not None:
            write_atomic(self.out / PROFILES_DIR / part.name, part_profile.to_bytes())
        os.replace(tmp_scores, self.out / part.name)
        _fsync_directory(self.out)

    def _tmp_paths(self, part: Part) -> tuple[Path, Path]:
        """Where a part's scores and quarantined rows are written until it is published."""
        return self.out / TMP_DIR / part.name, self.out / TMP_DIR / f"quarantine-{part.name}"

    def _scored(self, batch: Batch, result: ScoredBatch) -> Batch:
        kept = result.verdicts.accepted(batch.select(self.keep))
        return kept.append_columns([result.scores, self._constants(kept)])

    def _constants(self, rows: Batch) -> Batch:
        """The model name and version on each of `rows`: a slice of columns built for the
        largest batch so far (built for each batch, they cost 7 MB of fresh memory a 256K-row
        batch, and a pass over it)."""
        if self.constants is None or self.constants.num_rows < rows.num_rows:
            self.constants = rows.select([]).with_columns(
                [("model_name", self.model.name), ("model_version", self.model.version)]
            )
        return self.constants.slice(0, rows.num_rows)

    def _rejected(self, batch: Batch, source: str, first_row: int, verdicts: RowVerdicts) -> Batch:
        return verdicts.rejected(batch).with_columns(
            [
                ("_source_file", source),
                ("_source_row", [first_row + row for row in verdicts.rejected_rows]),
                ("_reason", verdicts.reasons),
            ]
        )


class WriteBehind:
    """Encodes and writes batches on a helper thread, so Parquet encoding overlaps the model.

    At most `depth` tasks (a batch's write, a part's publication) wait, which keeps memory
    bounded; they run in submission order. Once a task fails the later ones are skipped, so a
    part whose write failed is never published; on leaving after any other error, the tasks
    already submitted still run, so a part scored before the error is published.
    """

    def __init__(self, depth: int = 2) -> None:
        self.depth = depth
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edgewise-write")
        self.pending: list[Future[None]] = []
        self.failed = False  # only the pool's one thread reads and sets it

    def submit(self, task: Callable[[], object]) -> None:
        while len(self.pending) >= self.depth:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(self._run, task))

    def _run(self, task: Callable[[], object]) -> None:
        if self.failed:
            raise ScoreRunError("skipped after an earlier write failed")
        try:
            task()
        except BaseException:
            self.failed = True
            raise

    def drain(self) -> None:
        """Wait for every submitted write; re-raises the first failure."""
        while self.pending:
            self.pending.pop(0).result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True)


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def score(
    model: Model | str | os.PathLike[str],
    sources: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    keep: Sequence[str] = (),
    strict: bool = False,
    resume: bool = False,
    threads: int | None = None,
    batch_rows: int = 256 * 1024,
    part_rows: int = 4 * 1024 * 1024,
    compression: str = "zstd",
    profile: bool = False,
    progress: Progress | None = None,
) -> ScoreSummary:
    """Score Parquet `sources` with `model` into the directory `out`.

    Rows the model cannot score go to `out/quarantine/` with the reason, or, with
    `strict=True`, stop the run with `DataError`. With `resume=True` a run that was
    interrupted continues where it stopped and ends with the same output. With `profile=True`
    the model inputs that were read are profiled into `out/_edgewise_profile.ewprofile` and,
    when the bundle has a reference profile, compared with it (`ScoreSummary.drifted_columns`).
    """
    if not isinstance(model, Model):
        model = Model.load(model, threads=threads)
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    run = ScoreRun(
        model,
        resolve_inputs(sources),
        Path(out),
        keep=keep,
        strict=strict,
        threads=threads,
        batch_rows=batch_rows,
        part_rows=part_rows,
        compression=compression,
        profile=profile,
    )
    run.prepare_directory(resume)
    return run.execute(progress)


__all__ = ["ScoreSummary", "plan_parts", "resolve_inputs", "score"]
