"""The post-install health check: does the new model, loaded on this device, still give the
answers the fitted pipeline gave?

A bundle carries ``health.parquet``: sample inputs and, for each score column, the pipeline's
own score as ``expected_<column>``. The check loads the model as it will serve (the engine
"auto" picks, so the native engine whenever it covers the graph), scores the sample, compares
every score with its expected value within a tolerance, and bounds the time per row. It needs
neither pandas nor pyarrow: the core reads the Parquet file and hands columns over as numpy.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._core import InputLayout, ParquetFile
from ..bundle import Bundle
from ..exceptions import EdgewiseError, InstallError
from ..model import Model

EXPECTED_PREFIX = "expected_"
#: Core threads the agent's model runs on. Local requests are a few rows each, a device shares
#: its cores with the applications it serves, and one pool of one thread keeps memory small.
MODEL_THREADS = 1


@dataclass(frozen=True)
class HealthPolicy:
    #: Largest absolute difference allowed between a score and the pipeline's.
    tolerance: float = 1e-6
    #: Largest mean time per row of the sample, in milliseconds (a model far too slow for the
    #: device is as unhealthy as a wrong one).
    max_ms_per_row: float = 5.0


@dataclass(frozen=True)
class HealthReport:
    rows: int
    max_abs_diff: float
    ms_per_row: float

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "ms_per_row": round(self.ms_per_row, 4),
        }


def check_health(bundle: Bundle, policy: HealthPolicy, scratch: Path) -> tuple[Model, HealthReport]:
    """The loaded model and its report, or an `InstallError` saying which check failed."""
    where = f"{bundle.name} version {bundle.version}"
    try:
        model = load_model(bundle)
        batch = _read_sample(bundle.health, scratch)
        started = time.perf_counter()
        scored = model.score(batch, "health sample")
        elapsed = time.perf_counter() - started
        expected = _expected_scores(model, batch)
    except EdgewiseError as exc:
        raise InstallError(f"{where}: health check could not run: {exc}") from exc
    if len(scored.rejected_rows):
        raise InstallError(
            f"{where}: health check: the model refuses {len(scored.rejected_rows)} sample rows "
            f"({scored.reasons[0]})"
        )
    actual = dict(scored.columns)
    differences = [
        np.abs(np.asarray(actual[name], dtype=np.float64) - values) for name, values in expected
    ]
    worst = float(np.nanmax(np.concatenate(differences))) if differences else 0.0
    mismatched = any(
        bool(np.any(np.isnan(d) & ~np.isnan(v)))
        for d, (_, v) in zip(differences, expected, strict=True)
    )
    report = HealthReport(batch.num_rows, worst, 1000 * elapsed / max(batch.num_rows, 1))
    if mismatched or not worst <= policy.tolerance:
        raise InstallError(
            f"{where}: health check: scores differ from the expected ones by up to {worst:.3g} "
            f"(tolerance {policy.tolerance:g})"
        )
    if report.ms_per_row > policy.max_ms_per_row:
        raise InstallError(
            f"{where}: health check: {report.ms_per_row:.3g} ms per row, over the bound of "
            f"{policy.max_ms_per_row:g} ms"
        )
    return model, report


def load_model(bundle: Bundle) -> Model:
    """The model as the agent serves it (and as the health check tries it)."""
    return Model.from_bundle(bundle, threads=MODEL_THREADS)


def _read_sample(health: bytes, scratch: Path) -> Any:
    # The core reads Parquet from a path only; the file lives just long enough to be read.
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".parquet") as handle:
        handle.write(health)
        handle.flush()
        parquet = ParquetFile(handle.name, threads=1)
        names = [name for name, _ in parquet.column_kinds()]
        return parquet.read(list(range(len(parquet.row_group_rows))), names)


def _expected_scores(model: Model, batch: Any) -> list[tuple[str, np.ndarray]]:
    """Each score column's expected values as float64 numpy, through the core's input layout
    (which turns Arrow columns into tensors) rather than pyarrow."""
    present = set(batch.column_names)
    names = [c for c in model.output_columns if c != "label"]
    missing = [f"{EXPECTED_PREFIX}{c}" for c in names if f"{EXPECTED_PREFIX}{c}" not in present]
    if missing:
        raise InstallError(f"health sample lacks {', '.join(missing)}")
    columns = [f"{EXPECTED_PREFIX}{c}" for c in names]
    layout = InputLayout(
        [(name, "float64", [name]) for name in columns], [(name, True, None) for name in columns]
    )
    tensors, _ = layout.prepare(batch, "health sample")
    return [(name, np.asarray(tensors[f"{EXPECTED_PREFIX}{name}"]).reshape(-1)) for name in names]
