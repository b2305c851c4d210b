"""Drift between a reference and current data: per-column metrics and verdicts from two
profiles (`edgewise._core.drift_profiles`), and the report as JSON or HTML."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._core import Profile, drift_profiles
from ..sources import describe_source
from .html import render_html
from .profile import Source, profile

REPORT_FORMAT_VERSION = 1
DEFAULT_DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class ColumnDrift:
    name: str
    kind: str
    method: str
    score: float
    threshold: float
    drifted: bool
    metrics: dict[str, float]
    distribution: dict[str, Any] | None
    #: With `drift(..., exact=True)`: every metric computed on all the values (profiles/exact.py).
    exact: dict[str, Any] | None = None


@dataclass(frozen=True)
class DriftReport:
    """Each column's verdict; the dataset drifted when at least `drift_share` of its columns
    did (Evidently's rule, default one half)."""

    columns: list[ColumnDrift]
    drift_share: float
    reference: dict[str, Any]
    current: dict[str, Any]
    summaries: dict[str, tuple[dict[str, Any] | None, dict[str, Any] | None]] = field(repr=False)

    @property
    def drifted_columns(self) -> list[ColumnDrift]:
        return [column for column in self.columns if column.drifted]

    @property
    def drifted(self) -> bool:
        return bool(self.columns) and len(self.drifted_columns) >= self.drift_share * len(
            self.columns
        )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN and infinities as null)."""
        return {
            "format_version": REPORT_FORMAT_VERSION,
            "drifted": self.drifted,
            "drift_share": self.drift_share,
            "drifted_columns": len(self.drifted_columns),
            "columns_compared": len(self.columns),
            "reference": self.reference,
            "current": self.current,
            "columns": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "method": c.method,
                    "score": _finite(c.score),
                    "threshold": _finite(c.threshold),
                    "drifted": c.drifted,
                    "metrics": {k: _finite(v) for k, v in c.metrics.items()},
                    "distribution": c.distribution,
                    **({"exact": _finite_tree(c.exact)} if c.exact is not None else {}),
                    "reference_summary": self.summaries[c.name][0],
                    "current_summary": self.summaries[c.name][1],
                }
                for c in self.columns
            ],
        }

    def to_html(self) -> str:
        """One self-contained HTML page: the metrics table and each column's distributions."""
        return render_html(self.to_json())


def drift(
    reference: Profile | Source,
    current: Profile | Source,
    *,
    numeric_threshold: float = 0.1,
    categorical_threshold: float = 0.05,
    significance: float = 0.001,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    columns: Sequence[str] | None = None,
    threads: int | None = None,
    exact: bool = False,
) -> DriftReport:
    """Compare `current` with `reference`, each a `Profile` or data `profile()` accepts.

    Numeric columns drift when the Wasserstein distance over the reference's standard deviation
    exceeds `numeric_threshold`; categorical and boolean ones when the Jensen-Shannon distance of
    their shares exceeds `categorical_threshold`; either only when the difference is also beyond
    chance at `significance` (which matters only for small samples). See docs/drift.md.

    With `exact`, both sides must be data: each column also gets every metric computed on all
    its values (`ColumnDrift.exact`), which holds the compared columns in memory. Verdicts stay
    those of the profiles.
    """
    if exact and any(isinstance(side, Profile) for side in (reference, current)):
        raise ValueError("exact drift needs the data on both sides, not a profile")
    # Data is profiled keeping the sensitive columns of a profile on the other side sensitive.
    sensitive = [
        column["name"]
        for side in (reference, current)
        if isinstance(side, Profile)
        for column in side.summary()
        if column["sensitive"]
    ]
    sides = []
    for data in (reference, current):
        if isinstance(data, Profile):
            sides.append((data, {"rows": data.rows, "source": "profile"}))
        else:
            built = profile(
                data, columns=columns, sensitive=sorted(set(sensitive)), threads=threads
            )
            sides.append((built, {"rows": built.rows, "source": describe_source(data)}))
    (ref, ref_info), (cur, cur_info) = sides
    compared = drift_profiles(ref, cur, numeric_threshold, categorical_threshold, significance)
    ref_summary = {column["name"]: column for column in ref.summary()}
    cur_summary = {column["name"]: column for column in cur.summary()}
    if columns is not None:
        wanted = set(columns)
        compared = [column for column in compared if column["name"] in wanted]
    exact_by_column = {}
    if exact:
        from .exact import exact_metrics  # pyarrow.compute: 0.2 s to import, only when asked

        exact_by_column = exact_metrics(reference, current, [c["name"] for c in compared])
    return DriftReport(
        columns=[ColumnDrift(**c, exact=exact_by_column.get(c["name"])) for c in compared],
        drift_share=drift_share,
        reference=ref_info,
        current=cur_info,
        summaries={
            c["name"]: (ref_summary.get(c["name"]), cur_summary.get(c["name"])) for c in compared
        },
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _finite_tree(metrics: dict[str, Any]) -> dict[str, Any]:
    """Nested metrics with NaN and infinities as null."""
    return {
        key: _finite_tree(value)
        if isinstance(value, dict)
        else _finite(value)
        if isinstance(value, float)
        else value
        for key, value in metrics.items()
    }
