"""Data profiles, drift between them, and schema validation: the Python face of the Rust
`profile` and `drift` modules, with their reports (terminal, JSON, HTML)."""

from .._core import Profile
from .profile import profile

__all__ = ["Profile", "profile"]
