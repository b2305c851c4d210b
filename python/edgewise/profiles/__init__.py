"""Data profiles, drift between them, and schema validation: the Python face of the Rust
`profile` and `drift` modules, with their reports (terminal, JSON, HTML)."""

from .._core import Profile
from .drift import ColumnDrift, DriftReport, drift
from .profile import profile
from .schema import (
    Anomaly,
    ColumnSchema,
    Schema,
    ValidationReport,
    infer_schema,
    validate,
)

__all__ = [
    "Anomaly",
    "ColumnDrift",
    "ColumnSchema",
    "DriftReport",
    "Profile",
    "Schema",
    "ValidationReport",
    "drift",
    "infer_schema",
    "profile",
    "validate",
]
