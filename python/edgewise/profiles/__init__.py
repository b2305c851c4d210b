"""Data profiles, drift between them, and schema validation: the Python face of the Rust
`profile` and `drift` modules, with their reports (terminal, JSON, HTML)."""

from .._core import Profile
from .drift import ColumnDrift, DriftReport, drift
from .profile import profile

__all__ = ["ColumnDrift", "DriftReport", "Profile", "drift", "profile"]
